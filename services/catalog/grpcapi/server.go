// Package grpcapi is the catalog's gRPC edge: custody.catalog.v1.CatalogService.
// Each RPC validates its request (InvalidArgument with a field violation
// per bad field), authorizes the caller against the access table (authz.go),
// converts to a domain command, runs it through the app and maps any error
// to a status in one function (toStatus). Refused requests change nothing.
//
// Idempotency (AIP-155): a mutating RPC's command id is
// es.DeriveID(rpc, scope, request_id), where scope is the resource the
// request acts in (the vendor, the creator, the SKU, the session). Repeating
// a request returns the resource as it is now, without changing it; ids the
// catalog assigns (products, links, sessions) derive from the scope and the
// request_id, so a repeated create finds the same resource. The same
// request_id in the same scope with a different body is refused
// (InvalidArgument on request_id): the command carries the request's
// fingerprint (apierr.Fingerprint), see docs/design.md §4.
package grpcapi

import (
	"context"
	"log/slog"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/money"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/catalog/app"
	"github.com/custody/custody/services/catalog/domain"
)

// ServiceName is the full gRPC service name.
const ServiceName = "custody.catalog.v1.CatalogService"

// Server implements catalogv1.CatalogServiceServer.
type Server struct {
	catalogv1.UnimplementedCatalogServiceServer
	apierr.Edge[*app.App]
}

// New returns the gRPC server of a.
func New(a *app.App, log *slog.Logger) *Server {
	return &Server{Edge: apierr.NewEdge(a, log)}
}

// mutation is a mutating request: it has a request_id.
type mutation interface {
	proto.Message
	GetRequestId() string
}

// call is the idempotent identity of a mutating request r: the command id
// from rpc, scope and r's request_id, and r's fingerprint — every field of
// every catalog request changes what is asked — with which the same
// request_id for a different request is refused. Its actor is the caller's
// first role.
func call(ctx context.Context, rpc, scope string, r mutation) app.Call {
	id := es.DeriveID(rpc, scope, r.GetRequestId())
	c, _ := auth.CallerFrom(ctx)
	return app.Call{ID: id, Meta: es.Meta{CorrelationID: id, Actor: auth.Actor(c, nil), RequestFingerprint: apierr.Fingerprint(r)}}
}

// RegisterVendor implements CatalogService.
func (s *Server) RegisterVendor(ctx context.Context, r *catalogv1.RegisterVendorRequest) (*catalogv1.RegisterVendorResponse, error) {
	const rpc = "RegisterVendor"
	if err := admit(ctx, rpc, validateRegisterVendor(r), r.GetVendorId()); err != nil {
		return nil, err
	}
	v, err := s.App.RegisterVendor(ctx, call(ctx, rpc, r.GetVendorId(), r), domain.RegisterVendor{
		VendorID: r.GetVendorId(), DisplayName: r.GetDisplayName(), CountryCode: r.GetCountryCode(),
		HandlingTime: r.GetHandlingTime().AsDuration(),
	})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.RegisterVendorResponse{Vendor: vendorToProto(v)}, nil
}

// SetVendorHandlingTime implements CatalogService.
func (s *Server) SetVendorHandlingTime(ctx context.Context, r *catalogv1.SetVendorHandlingTimeRequest) (*catalogv1.SetVendorHandlingTimeResponse, error) {
	const rpc = "SetVendorHandlingTime"
	ht, invalid := validateSetVendorHandlingTime(r)
	if err := admit(ctx, rpc, invalid, r.GetVendorId()); err != nil {
		return nil, err
	}
	if _, err := s.App.Vendor(ctx, r.GetVendorId()); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	v, err := s.App.SetVendorHandlingTime(ctx, call(ctx, rpc, r.GetVendorId(), r), r.GetVendorId(), domain.SetHandlingTime{HandlingTime: ht})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.SetVendorHandlingTimeResponse{Vendor: vendorToProto(v)}, nil
}

// admitOwned is admit for an RPC on a resource that another id owns (a
// product or a SKU its vendor, a live session its creator): a valid
// request's resource is loaded to authorize the caller on its owner.
func (s *Server) admitOwned(ctx context.Context, rpc string, invalid error, owner func(context.Context) (string, error)) error {
	if invalid != nil {
		return invalid
	}
	id, err := owner(ctx)
	if err != nil {
		return s.toStatus(ctx, err)
	}
	return authorize(ctx, rpc, id)
}

// productVendor, skuVendor and sessionCreator are the owners admitOwned
// loads.
func (s *Server) productVendor(productID string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		p, err := s.App.Product(ctx, productID)
		return p.VendorID, err
	}
}

func (s *Server) skuVendor(skuID string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		p, err := s.App.ProductOfSKU(ctx, skuID)
		return p.VendorID, err
	}
}

func (s *Server) sessionCreator(sessionID string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		ss, err := s.App.Session(ctx, sessionID)
		return ss.CreatorID, err
	}
}

// UpdateProduct implements CatalogService.
func (s *Server) UpdateProduct(ctx context.Context, r *catalogv1.UpdateProductRequest) (*catalogv1.UpdateProductResponse, error) {
	const rpc = "UpdateProduct"
	cmd, invalid := updateProductCommand(r)
	if err := s.admitOwned(ctx, rpc, invalid, s.productVendor(r.GetProductId())); err != nil {
		return nil, err
	}
	p, err := s.App.UpdateProduct(ctx, call(ctx, rpc, r.GetProductId(), r), r.GetProductId(), cmd)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.UpdateProductResponse{Product: productToProto(p)}, nil
}

// SetSkuPrice implements CatalogService.
func (s *Server) SetSkuPrice(ctx context.Context, r *catalogv1.SetSkuPriceRequest) (*catalogv1.SetSkuPriceResponse, error) {
	const rpc = "SetSkuPrice"
	if err := s.admitOwned(ctx, rpc, validateSetSkuPrice(r), s.skuVendor(r.GetSkuId())); err != nil {
		return nil, err
	}
	p, err := s.App.SetSkuPrice(ctx, call(ctx, rpc, r.GetSkuId(), r), domain.SetSkuPrice{
		SkuID: r.GetSkuId(), Price: money.Money{Currency: r.GetPrice().GetCurrencyCode(), Minor: r.GetPrice().GetAmountMinor()},
	})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.SetSkuPriceResponse{Product: productToProto(p)}, nil
}

// AddSku implements CatalogService.
func (s *Server) AddSku(ctx context.Context, r *catalogv1.AddSkuRequest) (*catalogv1.AddSkuResponse, error) {
	const rpc = "AddSku"
	cmd, invalid := addSkuCommand(r)
	if err := s.admitOwned(ctx, rpc, invalid, s.productVendor(r.GetProductId())); err != nil {
		return nil, err
	}
	p, err := s.App.AddSKU(ctx, call(ctx, rpc, r.GetProductId(), r), r.GetProductId(), cmd)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.AddSkuResponse{Product: productToProto(p)}, nil
}

// ArchiveProduct implements CatalogService.
func (s *Server) ArchiveProduct(ctx context.Context, r *catalogv1.ArchiveProductRequest) (*catalogv1.ArchiveProductResponse, error) {
	const rpc = "ArchiveProduct"
	if err := s.admitOwned(ctx, rpc, validateArchiveProduct(r), s.productVendor(r.GetProductId())); err != nil {
		return nil, err
	}
	p, err := s.App.ArchiveProduct(ctx, call(ctx, rpc, r.GetProductId(), r), r.GetProductId(), domain.ArchiveProduct{Reason: r.GetReason()})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.ArchiveProductResponse{Product: productToProto(p)}, nil
}

// GetVendor implements CatalogService.
func (s *Server) GetVendor(ctx context.Context, r *catalogv1.GetVendorRequest) (*catalogv1.GetVendorResponse, error) {
	if err := admit(ctx, "GetVendor", validateID("vendor_id", r.GetVendorId(), (*checker).vendorID), ""); err != nil {
		return nil, err
	}
	v, err := s.App.Vendor(ctx, r.GetVendorId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.GetVendorResponse{Vendor: vendorToProto(v)}, nil
}

// CreateProduct implements CatalogService.
func (s *Server) CreateProduct(ctx context.Context, r *catalogv1.CreateProductRequest) (*catalogv1.CreateProductResponse, error) {
	const rpc = "CreateProduct"
	cmd, invalid := createProductCommand(r)
	if err := admit(ctx, rpc, invalid, r.GetVendorId()); err != nil {
		return nil, err
	}
	cmd.ProductID = domain.ProductID(r.GetVendorId(), r.GetRequestId())
	p, err := s.App.CreateProduct(ctx, call(ctx, rpc, r.GetVendorId(), r), cmd)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.CreateProductResponse{Product: productToProto(p)}, nil
}

// GetProduct implements CatalogService.
func (s *Server) GetProduct(ctx context.Context, r *catalogv1.GetProductRequest) (*catalogv1.GetProductResponse, error) {
	if err := admit(ctx, "GetProduct", validateID("product_id", r.GetProductId(), (*checker).assignedID), ""); err != nil {
		return nil, err
	}
	p, err := s.App.Product(ctx, r.GetProductId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.GetProductResponse{Product: productToProto(p)}, nil
}

// ListProducts implements CatalogService.
func (s *Server) ListProducts(ctx context.Context, r *catalogv1.ListProductsRequest) (*catalogv1.ListProductsResponse, error) {
	lr, invalid := validateListProducts(r)
	if err := admit(ctx, "ListProducts", invalid, ""); err != nil {
		return nil, err
	}
	ps, next, err := s.App.ListProducts(ctx, lr.vendorID, lr.size, lr.before)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &catalogv1.ListProductsResponse{NextPageToken: encodePageToken(lr.vendorID, next)}
	for _, p := range ps {
		resp.Products = append(resp.Products, productToProto(p))
	}
	return resp, nil
}

// AdjustStock implements CatalogService.
func (s *Server) AdjustStock(ctx context.Context, r *catalogv1.AdjustStockRequest) (*catalogv1.AdjustStockResponse, error) {
	const rpc = "AdjustStock"
	if err := s.admitOwned(ctx, rpc, validateAdjustStock(r), s.skuVendor(r.GetSkuId())); err != nil {
		return nil, err
	}
	p, err := s.App.AdjustStock(ctx, call(ctx, rpc, r.GetSkuId(), r), domain.AdjustStock{
		SkuID: r.GetSkuId(), Delta: r.GetDelta(), Reason: r.GetReason(),
	})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.AdjustStockResponse{Product: productToProto(p)}, nil
}

// CreateAffiliateLink implements CatalogService.
func (s *Server) CreateAffiliateLink(ctx context.Context, r *catalogv1.CreateAffiliateLinkRequest) (*catalogv1.CreateAffiliateLinkResponse, error) {
	const rpc = "CreateAffiliateLink"
	if err := admit(ctx, rpc, validateCreateAffiliateLink(r), r.GetCreatorId()); err != nil {
		return nil, err
	}
	l, err := s.App.CreateLink(ctx, call(ctx, rpc, r.GetCreatorId(), r),
		domain.LinkID(r.GetCreatorId(), r.GetRequestId()), r.GetCreatorId(), r.GetProductId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.CreateAffiliateLinkResponse{Link: linkToProto(l)}, nil
}

// GetAffiliateLink implements CatalogService.
func (s *Server) GetAffiliateLink(ctx context.Context, r *catalogv1.GetAffiliateLinkRequest) (*catalogv1.GetAffiliateLinkResponse, error) {
	if err := admit(ctx, "GetAffiliateLink", validateID("link_id", r.GetLinkId(), (*checker).assignedID), ""); err != nil {
		return nil, err
	}
	l, err := s.App.Link(ctx, r.GetLinkId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.GetAffiliateLinkResponse{Link: linkToProto(l)}, nil
}

// StartLiveSession implements CatalogService.
func (s *Server) StartLiveSession(ctx context.Context, r *catalogv1.StartLiveSessionRequest) (*catalogv1.StartLiveSessionResponse, error) {
	const rpc = "StartLiveSession"
	if err := admit(ctx, rpc, validateStartLiveSession(r), r.GetCreatorId()); err != nil {
		return nil, err
	}
	ss, err := s.App.StartSession(ctx, call(ctx, rpc, r.GetCreatorId(), r),
		domain.SessionID(r.GetCreatorId(), r.GetRequestId()), domain.StartSession{CreatorID: r.GetCreatorId(), Title: r.GetTitle()})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.StartLiveSessionResponse{Session: sessionToProto(ss)}, nil
}

// PinProduct implements CatalogService.
func (s *Server) PinProduct(ctx context.Context, r *catalogv1.PinProductRequest) (*catalogv1.PinProductResponse, error) {
	const rpc = "PinProduct"
	if err := s.admitOwned(ctx, rpc, validatePin(r.GetRequestId(), r.GetSessionId(), r.GetProductId()), s.sessionCreator(r.GetSessionId())); err != nil {
		return nil, err
	}
	ss, err := s.App.PinProduct(ctx, call(ctx, rpc, r.GetSessionId(), r), r.GetSessionId(), r.GetProductId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.PinProductResponse{Session: sessionToProto(ss)}, nil
}

// UnpinProduct implements CatalogService.
func (s *Server) UnpinProduct(ctx context.Context, r *catalogv1.UnpinProductRequest) (*catalogv1.UnpinProductResponse, error) {
	const rpc = "UnpinProduct"
	if err := s.admitOwned(ctx, rpc, validatePin(r.GetRequestId(), r.GetSessionId(), r.GetProductId()), s.sessionCreator(r.GetSessionId())); err != nil {
		return nil, err
	}
	ss, err := s.App.UnpinProduct(ctx, call(ctx, rpc, r.GetSessionId(), r), r.GetSessionId(), r.GetProductId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.UnpinProductResponse{Session: sessionToProto(ss)}, nil
}

// EndLiveSession implements CatalogService.
func (s *Server) EndLiveSession(ctx context.Context, r *catalogv1.EndLiveSessionRequest) (*catalogv1.EndLiveSessionResponse, error) {
	const rpc = "EndLiveSession"
	if err := s.admitOwned(ctx, rpc, validateEndLiveSession(r), s.sessionCreator(r.GetSessionId())); err != nil {
		return nil, err
	}
	ss, err := s.App.EndSession(ctx, call(ctx, rpc, r.GetSessionId(), r), r.GetSessionId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.EndLiveSessionResponse{Session: sessionToProto(ss)}, nil
}

// GetLiveSession implements CatalogService.
func (s *Server) GetLiveSession(ctx context.Context, r *catalogv1.GetLiveSessionRequest) (*catalogv1.GetLiveSessionResponse, error) {
	if err := admit(ctx, "GetLiveSession", validateID("session_id", r.GetSessionId(), (*checker).assignedID), ""); err != nil {
		return nil, err
	}
	ss, err := s.App.Session(ctx, r.GetSessionId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &catalogv1.GetLiveSessionResponse{Session: sessionToProto(ss)}, nil
}

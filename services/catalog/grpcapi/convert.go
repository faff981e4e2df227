package grpcapi

import (
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/custody/custody/pkg/protoconv"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/catalog/domain"
)

func vendorToProto(v domain.Vendor) *catalogv1.Vendor {
	out := &catalogv1.Vendor{VendorId: v.ID, DisplayName: v.DisplayName, CountryCode: v.CountryCode, RegisteredTime: protoconv.Timestamp(v.RegisteredAt)}
	if v.HandlingTime > 0 {
		out.HandlingTime = durationpb.New(v.HandlingTime)
	}
	return out
}

func productToProto(p domain.Product) *catalogv1.Product {
	out := &catalogv1.Product{
		ProductId: p.ID, VendorId: p.VendorID, Title: p.Title, Description: p.Description, Category: p.Category,
		AffiliateCommissionBps: p.CommissionBps, CreateTime: protoconv.Timestamp(p.CreatedAt),
		Archived: p.Archived, ArchiveTime: protoconv.Timestamp(p.ArchivedAt),
	}
	for _, k := range p.SKUs {
		out.Skus = append(out.Skus, &catalogv1.Sku{
			SkuId: k.ID, Code: k.Code, Title: k.Title, Price: k.Price.ToProto(),
			Available: k.Available, Reserved: k.Reserved, Sold: k.Sold,
		})
	}
	return out
}

func linkToProto(l domain.Link) *catalogv1.AffiliateLink {
	return &catalogv1.AffiliateLink{
		LinkId: l.ID, CreatorId: l.CreatorID, ProductId: l.ProductID, VendorId: l.VendorID,
		CommissionBps: l.CommissionBps, CreateTime: protoconv.Timestamp(l.CreatedAt),
	}
}

func sessionToProto(s domain.Session) *catalogv1.LiveSession {
	out := &catalogv1.LiveSession{
		SessionId: s.ID, CreatorId: s.CreatorID, Title: s.Title, StartTime: protoconv.Timestamp(s.StartedAt), EndTime: protoconv.Timestamp(s.EndedAt),
	}
	for _, p := range s.Pins {
		out.Pins = append(out.Pins, &catalogv1.Pin{
			ProductId: p.ProductID, PinTime: protoconv.Timestamp(p.PinnedAt), UnpinTime: protoconv.Timestamp(p.UnpinnedAt), CommissionBps: p.CommissionBps,
		})
	}
	return out
}

package domain

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/fault"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
)

// Link is a creator's affiliate link to a product. Its commission rate is
// the product's rate when the link was made and never changes.
type Link struct {
	ID            string
	Created       bool
	CreatorID     string
	ProductID     string
	VendorID      string
	CommissionBps int32
	CreatedAt     time.Time
}

// LinkCommand is a command to a link.
type LinkCommand interface{ command[Link] }

// CreateLink makes a link. The caller copies the product's vendor and
// current commission rate into it (the app layer reads the product).
type CreateLink struct {
	CreatorID     string
	ProductID     string
	VendorID      string
	CommissionBps int32
	// Archived: the product is archived (the caller read it); a new link
	// is refused, a repeat of one made before is answered as such.
	Archived bool
	Now      time.Time
}

// Links is the affiliate-link aggregate: created once.
var Links = createdBy[Link, LinkCommand, CreateLink]("link", func(id string) Link { return Link{ID: id} }, evolveLink, nil)

func (s Link) created() (string, bool) { return s.ID, s.Created }

func (c CreateLink) decide(s Link) ([]proto.Message, error) {
	var v fault.Violations
	if !CreatorIDPattern.MatchString(c.CreatorID) {
		v.Add("creator_id", "must be 1-128 letters, digits, '.', '-' or '_'")
	}
	if !AssignedIDPattern.MatchString(c.ProductID) {
		v.Add("product_id", "is not a product id")
	}
	if c.CommissionBps < 0 || c.CommissionBps > MaxBps {
		v.Add("commission_bps", "must be between 0 and %d basis points", MaxBps)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if c.Archived {
		return nil, refuse(ErrProductArchived, "product %s is archived: it takes no new links", c.ProductID)
	}
	return []proto.Message{&catalogv1.AffiliateLinkCreated{
		LinkId: s.ID, CreatorId: c.CreatorID, ProductId: c.ProductID, VendorId: c.VendorID,
		CommissionBps: c.CommissionBps, CreateTime: timestamppb.New(c.Now),
	}}, nil
}

func evolveLink(s Link, e proto.Message) Link {
	if e, ok := e.(*catalogv1.AffiliateLinkCreated); ok {
		s.Created = true
		s.CreatorID, s.ProductID, s.VendorID = e.GetCreatorId(), e.GetProductId(), e.GetVendorId()
		s.CommissionBps = e.GetCommissionBps()
		s.CreatedAt = e.GetCreateTime().AsTime()
	}
	return s
}

package domain_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es/estest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/catalog/domain"
)

func TestLink(t *testing.T) {
	made := &catalogv1.AffiliateLinkCreated{LinkId: "l1", CreatorId: "c1", ProductId: pid, VendorId: "v1", CommissionBps: 1500, CreateTime: timestamppb.New(t0)}
	estest.Run(t, domain.Links, "l1", []estest.Case[domain.LinkCommand]{
		{Name: "create", When: domain.CreateLink{CreatorID: "c1", ProductID: pid, VendorID: "v1", CommissionBps: 1500, Now: t0},
			Then: []proto.Message{made}},
		{Name: "create again", Given: []proto.Message{made}, When: domain.CreateLink{CreatorID: "c1", ProductID: pid, VendorID: "v1"},
			Err: &domain.ExistsError{Resource: "link", ID: "l1"}},
		{Name: "bad ids and rate", When: domain.CreateLink{CreatorID: "c 1", ProductID: "p-1", CommissionBps: 20000},
			Err: estest.Invalid("creator_id", "product_id", "commission_bps")},
	})
	// The rate is the one recorded at creation, whatever the product does later.
	s := domain.Links.Fold("l1", nil)
	s = domain.Links.Evolve(s, made)
	if s.CommissionBps != 1500 || !s.Created || s.CreatorID != "c1" {
		t.Fatalf("state %+v", s)
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	orderv1 "github.com/custody/custody/proto/custody/order/v1"
)

// TestDiskFullFailsFastAndRecovers runs the real binary on a small
// filesystem of its own (tmpfs: the test needs root, as CI has) and fills
// the disk under it, to the last byte. Orders then fail at once with
// Unavailable (not at their deadline), the process reports not ready, and
// once space is freed it writes again, without a restart, with every order
// it acknowledged still there.
func TestDiskFullFailsFastAndRecovers(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("disk-full test skipped in -short mode: it fills a tmpfs under the real binary; make test runs it (as root, as CI does)")
	}
	if os.Geteuid() != 0 {
		t.Skip("disk-full test skipped: mounting its small filesystem (tmpfs) needs root; it runs in CI (.ci/run runs as root) and under sudo make test")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("disk-full test skipped: cannot mount a tmpfs here (%v %s); it runs where root may mount one, as in CI", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	addr, admin := freeAddr(t), freeAddr(t)
	serve(t, dir, addr, "--admin-addr="+admin, "--log-level=warn", "--disk-reserve-mib=16")
	ops := dialAs(t, dir, addr, "platform", "service")
	cat, ord := ops.cat, ops.ord
	p := createProduct(t, cat, "v-disk", 1000, 700)
	var acked []string
	n := 0
	place := func(timeout time.Duration) error {
		n++
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		r, err := ord.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
			RequestId: fmt.Sprintf("disk-%d", n), BuyerId: "b-disk",
			Lines:           []*orderv1.LineRequest{{SkuId: p.GetSkus()[0].GetSkuId(), Quantity: 1}},
			ShippingAddress: address, Payment: &orderv1.Payment{PspReference: fmt.Sprintf("psp-disk-%d", n), Amount: eur(700)},
			WaitTimeout: durationpb.New(5 * time.Second),
		})
		if err == nil {
			acked = append(acked, r.GetOrder().GetOrderId())
		}
		return err
	}
	for range 5 {
		if err := place(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	ready := func() bool {
		r, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	}
	if !ready() {
		t.Fatal("not ready before the disk filled")
	}

	// Fill the disk to the last byte.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	_ = f.Close()

	// Orders fail at once with Unavailable, well inside their deadline.
	var last error
	eventually(t, "orders to fail fast with Unavailable", func() bool {
		last = place(5 * time.Second)
		return status.Code(last) == codes.Unavailable
	})
	for range 3 {
		if err := place(5 * time.Second); status.Code(err) != codes.Unavailable {
			t.Fatalf("an order on a full disk: %v, want Unavailable", err)
		}
	}
	eventually(t, "/readyz to say not ready", func() bool { return !ready() })

	// Space returns: it writes again without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventually(t, "/readyz to say ready", ready)
	eventually(t, "an order to be accepted again", func() bool {
		return place(10*time.Second) == nil
	})
	// Every order acknowledged, before, during (retries of the reactions
	// that failed meanwhile) and after, settles confirmed.
	for _, id := range acked {
		eventually(t, "order "+id+" to be confirmed", func() bool {
			r, err := ord.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: id})
			return err == nil && r.GetOrder().GetState() == orderv1.OrderState_ORDER_STATE_CONFIRMED
		})
	}
	t.Logf("%d orders acknowledged across the episode, all confirmed; refused while full with: %v", len(acked), last)
}

package platform_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/server"
)

// pki writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all as PEM files in dir.
func pki(t *testing.T, dir string) (ca, srvCert, srvKey, cliCert, cliKey string) {
	t.Helper()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "custody test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(n int64, usage x509.ExtKeyUsage) ([]byte, []byte) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: "custody"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, _ := x509.MarshalECPrivateKey(k)
		return der, kd
	}
	sd, sk := leaf(2, x509.ExtKeyUsageServerAuth)
	cd, ck := leaf(3, x509.ExtKeyUsageClientAuth)
	return write("ca.pem", "CERTIFICATE", caDER),
		write("server.pem", "CERTIFICATE", sd), write("server-key.pem", "EC PRIVATE KEY", sk),
		write("client.pem", "CERTIFICATE", cd), write("client-key.pem", "EC PRIVATE KEY", ck)
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, sc, sk, cc, ck := pki(t, dir)
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- platform.Run(ctx, platform.Config{
			DataDir: dir, GRPCAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			TLS:     server.TLSFiles{CertFile: sc, KeyFile: sk, CAFile: ca},
			OnReady: func(p *platform.Process) { ready <- p.GRPCAddr },
		}, nil)
	}()
	defer func() { cancel(); <-done }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	check := func(opts ...grpc.DialOption) error {
		conn, err := server.Dial(addr, "", opts...)
		if err != nil {
			return err
		}
		defer conn.Close()
		cctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
		return err
	}
	dial := func(f server.TLSFiles) grpc.DialOption {
		o, err := f.DialOption()
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	if err := check(); err == nil {
		t.Error("a plaintext client was served")
	}
	if err := check(dial(server.TLSFiles{CAFile: ca})); err == nil {
		t.Error("a client without a certificate was served")
	}
	if err := check(dial(server.TLSFiles{CAFile: ca, CertFile: cc, KeyFile: ck})); err != nil {
		t.Errorf("a client with a certificate from the CA: %v", err)
	}
}

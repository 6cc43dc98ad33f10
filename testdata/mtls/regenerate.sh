#!/usr/bin/env bash
# Regenerates the test-only mutual-TLS fixtures (RFC 8705 tests: crates/tessera/tests/interop_mtls.rs,
# interop/oidc-provider/server.mjs). Valid for 100 years; the CA's key is thrown away.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
conf() { cat /etc/ssl/openssl.cnf ca.cnf; }
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/ca-key.pem"
openssl req -x509 -new -key "$tmp/ca-key.pem" -subj "/CN=tessera test CA" -days 36500 -sha256 \
  -extensions v3_ca -config <(conf) -out ca.pem
issue() { # name subject extensions
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1-key.pem"
  openssl req -new -key "$1-key.pem" -subj "$2" -out "$tmp/$1.csr"
  openssl x509 -req -in "$tmp/$1.csr" -CA ca.pem -CAkey "$tmp/ca-key.pem" -CAcreateserial \
    -CAserial "$tmp/ca.srl" -days 36500 -sha256 -extfile ca.cnf -extensions "$3" -out "$1.pem"
}
issue server "/CN=127.0.0.1" server          # the oidc-provider HTTPS listener (SAN IP 127.0.0.1)
issue client "/CN=mtls-client" client        # tls_client_auth: PKCS#8 EC key
# self_signed_tls_client_auth: an RSA key in PKCS#1 form (the other PEM flavour rustls reads).
openssl genrsa -traditional -out self-signed-key.pem 2048
openssl req -x509 -new -key self-signed-key.pem -subj "/CN=self-signed-client" -days 36500 -sha256 \
  -extensions client -config <(conf) -out self-signed.pem
# Right subject, not issued by the CA: refused. SEC1 EC key.
openssl ecparam -name prime256v1 -genkey -noout -out wrong-key.pem
openssl req -x509 -new -key wrong-key.pem -subj "/CN=mtls-client" -days 36500 -sha256 \
  -extensions client -config <(conf) -out wrong.pem

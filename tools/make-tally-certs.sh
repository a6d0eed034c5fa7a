#!/usr/bin/env bash
# make-tally-certs.sh DIR [NODE...]: a private CA and one certificate per
# mayfly-tally node, for the mutual TLS between nodes
# (docs/design/distribution.md, "What protects the port").
#
#   tools/make-tally-certs.sh /etc/mayfly-tally aggregator ingest1 ingest2
#
# writes, with the openssl command line tool (Debian's `openssl` package):
#   DIR/ca.pem, DIR/ca.key       the CA: give ca.pem to every node
#                                (--tls-ca); keep ca.key offline
#   DIR/NODE.pem, DIR/NODE.key   a node's certificate and key
#                                (--tls-cert, --tls-key), CN=NODE
# Keys are EC P-256, unencrypted (mayfly-tally reads them unattended), mode
# 0600. Certificates are valid for DAYS days (environment, default 825).
# Nodes check that a peer's certificate chains to the CA, not its name:
# every certificate this CA signs admits a node to the cluster, so use one
# CA per cluster. An existing CA in DIR is reused, so more nodes can be
# added later. Never commit the keys.
set -euo pipefail

dir=${1:?usage: make-tally-certs.sh DIR [NODE...] (default nodes: node1 node2)}
shift
nodes=("$@")
[[ ${#nodes[@]} -gt 0 ]] || nodes=(node1 node2)
days=${DAYS:-825}

mkdir -p "$dir"
umask 077
if [[ ! -f $dir/ca.key ]]; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -days "$days" \
    -subj "/CN=mayfly-tally CA" \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
fi
for node in "${nodes[@]}"; do
  [[ $node =~ ^[A-Za-z0-9._-]+$ ]] || {
    echo "make-tally-certs.sh: bad node name '$node'" >&2
    exit 2
  }
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/$node.key" -out "$dir/$node.csr" -subj "/CN=$node" \
    2>/dev/null
  # Both uses: a node is a TLS server when it publishes, a client when it
  # connects.
  openssl x509 -req -in "$dir/$node.csr" -CA "$dir/ca.pem" \
    -CAkey "$dir/ca.key" -CAcreateserial -out "$dir/$node.pem" \
    -days "$days" -extfile <(printf '%s\n' \
      'basicConstraints=critical,CA:FALSE' \
      'keyUsage=critical,digitalSignature' \
      'extendedKeyUsage=serverAuth,clientAuth') 2>/dev/null
  rm -f "$dir/$node.csr"
done
chmod 0644 "$dir"/*.pem
echo "make-tally-certs.sh: CA $dir/ca.pem; nodes: ${nodes[*]}"

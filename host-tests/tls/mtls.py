"""Test PKI and mTLS client for an Envoy listener that requires client certificates.

Used by host-tests/src/tls.rs. Certificates come from Python's `cryptography` and the client
is Python's `ssl` (OpenSSL), both independent of Envoy's BoringSSL.

    mtls.py pki DIR < spec.json
        spec: {"clients": [{"name": "client-0", "uri_san": "spiffe://td/agent/x"},
                           {"name": "client-1", "uri_san": null}]}
        writes DIR/ca.pem, DIR/server.pem, DIR/server.key (for `localhost` and 127.0.0.1)
        and DIR/<name>.pem, DIR/<name>.key per client; a client whose `uri_san` is null gets
        a certificate without any subject alternative name.

    mtls.py request --port PORT --ca CA [--cert CERT --key KEY] < request-bytes
        sends the raw HTTP/1.1 request over TLS to 127.0.0.1:PORT (server name `localhost`,
        verified against CA), presenting CERT/KEY when given, and writes the raw response
        bytes to stdout until the server closes. Exits 3 on a TLS or connection error (a
        refused handshake included), with the message on stderr.

EC P-256 keys: fast to generate, and every TLS stack involved supports them.
"""

import argparse
import datetime
import ipaddress
import json
import os
import socket
import ssl
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def write_key(path, key):
    with open(path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def write_cert(path, cert):
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def issue(subject, key, issuer, issuer_key, *, ca=False, sans=None, usage=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def pki(directory):
    spec = json.load(sys.stdin)
    os.makedirs(directory, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bridle test CA")])
    ca = issue("bridle test CA", ca_key, ca_name, ca_key, ca=True)
    write_cert(os.path.join(directory, "ca.pem"), ca)

    server_key = ec.generate_private_key(ec.SECP256R1())
    server = issue(
        "localhost",
        server_key,
        ca_name,
        ca_key,
        sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
    )
    write_cert(os.path.join(directory, "server.pem"), server)
    write_key(os.path.join(directory, "server.key"), server_key)

    for client in spec["clients"]:
        key = ec.generate_private_key(ec.SECP256R1())
        uri = client.get("uri_san")
        cert = issue(
            client["name"],
            key,
            ca_name,
            ca_key,
            sans=[x509.UniformResourceIdentifier(uri)] if uri else None,
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        )
        write_cert(os.path.join(directory, client["name"] + ".pem"), cert)
        write_key(os.path.join(directory, client["name"] + ".key"), key)


def request(args):
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ca)
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    payload = sys.stdin.buffer.read()
    response = bytearray()
    try:
        with socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(payload)
                while True:
                    try:
                        chunk = tls.recv(65536)
                    except ssl.SSLEOFError:
                        # Closed without close_notify: the end of the response all the same
                        # (its framing, checked by the caller, tells whether it is whole).
                        break
                    if not chunk:
                        break
                    response.extend(chunk)
    except (OSError, ssl.SSLError) as err:
        # A TLS 1.3 server refuses a client certificate after the handshake, so the refusal
        # can arrive with the first read: whatever was read before it is not a response.
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        return 3
    sys.stdout.buffer.write(response)
    return 0


def main():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("pki")
    make.add_argument("directory")
    send = commands.add_parser("request")
    send.add_argument("--port", type=int, required=True)
    send.add_argument("--ca", required=True)
    send.add_argument("--cert")
    send.add_argument("--key")
    send.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    if args.command == "pki":
        pki(args.directory)
        return 0
    return request(args)


if __name__ == "__main__":
    sys.exit(main())

"""pki: a throwaway certificate authority for TLS tests, made with the
openssl command line: a CA, and a server and a client certificate for
localhost / 127.0.0.1, valid two days."""
import os
import subprocess


def make_pki(tmp):
    """A CA, a server certificate for localhost and a client certificate."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=tmp)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=helpwire test CA")
    for name in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", "/CN=localhost")
        with open(os.path.join(tmp, name + ".ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        run("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext")

    def read(n):
        with open(os.path.join(tmp, n), "rb") as f:
            return f.read()

    return {n: read(n) for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}

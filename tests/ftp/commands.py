#!/usr/bin/env python3
"""Python's ftplib (FTP and FTP_TLS) against lc's FTP server, one scenario at a time.

Usage: commands.py SCENARIO HOST PORT USER PASSWORD CA_FILE

Prints one line per step, `COMMAND -> CODES`, with the codes of every reply the step got
(a transfer shows its 1xx and its final reply, ABOR its 426 and 226); some steps add
` | DETAIL` (the folder PWD names, the names NLST lists, the facts FEAT offers). tests/it/ftp.rs
compares the output with its tables. The scenarios expect a config with an `ftp` source
`squid`, an `ftps` source `secure` and `[ftp] max_file_bytes = 100000`.

ftplib does the connecting, AUTH TLS, the passive/active data connections and ABOR (as urgent
data, the way ftplib sends it); replies are read raw so that refusals show as codes instead of
exceptions. Anything unexpected (a reply that cannot be parsed, a TLS failure) raises, and the
traceback on stderr is the test's failure message.
"""

import ftplib
import os
import re
import socket
import ssl
import sys
import time

TIMEOUT = 20
# Exactly [ftp] max_file_bytes, and one byte more.
MAX_FILE = 100000


def lines_of(n, tag):
    """`n` newline-terminated log lines."""
    return b"".join(b"%s line %06d\n" % (tag.encode(), i) for i in range(n))


def exactly(n):
    """`n` bytes of whole lines (the last one padded to fit)."""
    body = lines_of(n // 10 + 1, "pad")[: n - 1]
    return body + b"\n"


class Client:
    def __init__(self, host, port, user, password, ca_file, tls):
        self.host, self.port = host, port
        self.user, self.password = user, password
        self.ctx = ssl.create_default_context(cafile=ca_file)
        self.ftp = ftplib.FTP_TLS(context=self.ctx) if tls else ftplib.FTP()
        self.prot_p = False
        self.passive_addr = None
        self.listener = None

    def show(self, label, codes, detail=None):
        line = f"{label} -> {' '.join(codes)}"
        if detail is not None:
            line += f" | {detail}"
        print(line, flush=True)

    def connect(self):
        welcome = self.ftp.connect(self.host, self.port, timeout=TIMEOUT)
        self.show("connect", [welcome[:3]])

    def raw(self, line):
        """Sends `line`, returns the whole reply."""
        self.ftp.putcmd(line)
        return self.ftp.getmultiline()

    def cmd(self, line, label=None, detail=None):
        """One command; `detail` maps the reply to what to show after `|`."""
        resp = self.raw(line)
        self.show(label or line, [resp[:3]], detail(resp) if detail else None)
        return resp

    def login(self, password=None):
        self.cmd(f"USER {self.user}")
        self.cmd(f"PASS {password or self.password}", label="PASS ***")

    def mlst(self, path):
        """MLST, showing its facts line with the time left out."""

        def facts(resp):
            lines = resp.splitlines()
            return re.sub(r"modify=\d+", "modify=*", lines[1].strip()) if len(lines) > 2 else None

        self.cmd(f"MLST {path}", detail=facts)

    def pwd(self):
        self.cmd("PWD", detail=lambda r: ftplib.parse257(r) if r.startswith("257") else "")

    def feat(self):
        def facts(resp):
            lines = resp.splitlines()[1:-1]
            return ",".join(l.strip() for l in lines)

        self.cmd("FEAT", detail=facts)

    def auth_tls(self):
        resp = self.cmd("AUTH TLS")
        if resp.startswith("234"):
            # What FTP_TLS.auth() does after its 234.
            self.ftp.sock = self.ctx.wrap_socket(self.ftp.sock, server_hostname=self.host)
            self.ftp.file = self.ftp.sock.makefile("r", encoding=self.ftp.encoding)

    def prot(self, level):
        resp = self.cmd(f"PROT {level}")
        if resp.startswith("200"):
            self.prot_p = level == "P"

    def pasv(self):
        resp = self.cmd("PASV")
        if resp.startswith("227"):
            self.passive_addr = ftplib.parse227(resp)

    def passive(self, line, **kw):
        """`transfer` after a PASV that is not shown (it must succeed)."""
        resp = self.raw("PASV")
        if not resp.startswith("227"):
            raise ftplib.error_reply(f"PASV before {line}: {resp}")
        self.passive_addr = ftplib.parse227(resp)
        self.transfer(line, **kw)

    def epsv(self):
        resp = self.cmd("EPSV")
        if resp.startswith("229"):
            self.passive_addr = ftplib.parse229(resp, self.ftp.sock.getpeername())

    def active(self, extended=False):
        """PORT (or EPRT) with a listening socket of our own on the control connection's address."""
        own = self.ftp.sock.getsockname()[0]
        family = socket.AF_INET6 if ":" in own else socket.AF_INET
        self.listener = socket.create_server((own, 0), family=family)
        self.listener.settimeout(TIMEOUT)
        host, port = self.listener.getsockname()[:2]
        if family == socket.AF_INET6:
            line = f"EPRT |2|{host}|{port}|"
        elif extended:
            line = f"EPRT |1|{host}|{port}|"
        else:
            line = "PORT " + ",".join(host.split(".") + [str(port >> 8), str(port & 0xFF)])
        resp = self.cmd(line, label="EPRT (own address)" if extended else "PORT (own address)")
        if not resp.startswith("200"):
            self.listener.close()
            self.listener = None

    def active_to_nobody(self, line):
        """PORT to a port of ours where nothing listens, then `line`."""
        probe = socket.create_server((self.ftp.sock.getsockname()[0], 0))
        host, port = probe.getsockname()[:2]
        probe.close()
        parts = host.split(".") + [str(port >> 8), str(port & 0xFF)]
        self.cmd("PORT " + ",".join(parts), label="PORT (own address, nothing listening)")
        first = self.raw(line)
        codes = [first[:3]]
        if first.startswith("1"):
            codes.append(self.ftp.getmultiline()[:3])
        self.show(line, codes)

    def transfer(self, line, upload=None, names=False, abort_after=None, no_close_notify=False):
        """A data command on the connection PASV/EPSV/PORT/EPRT prepared. Uploads `upload`,
        or reads what comes (shown as names for `names`). With `abort_after`, sends that many
        bytes, then ABOR on the control connection, and closes the data connection after.
        With `no_close_notify`, an upload under PROT P ends with a TCP close alone, as when
        the client is killed or an attacker cuts the connection (a truncation)."""
        if upload is None and line.split()[0] in ("STOR", "APPE"):
            upload = b"x\n"
        sock = None
        if self.passive_addr:
            # As ftplib does: connect first, then send the command.
            sock = socket.create_connection(self.passive_addr, timeout=TIMEOUT)
            self.passive_addr = None
        first = self.raw(line)
        codes = [first[:3]]
        if not first.startswith("1"):
            for s in (sock, self.listener):
                if s:
                    s.close()
            self.listener = None
            self.show(line, codes)
            return
        if sock is None and self.listener is None:
            raise ftplib.error_reply(f"{line}: {first} but no data connection was prepared")
        if self.listener:
            sock, _ = self.listener.accept()
            sock.settimeout(TIMEOUT)
            self.listener.close()
            self.listener = None
        if self.prot_p:
            sock = self.ctx.wrap_socket(sock, server_hostname=self.host)
        detail = None
        if abort_after is not None:
            sock.sendall(upload[:abort_after])
            if isinstance(self.ftp.sock, ssl.SSLSocket):
                # ftplib's abort() sends urgent data, which an SSL socket cannot: a plain
                # ABOR line, as FTPS clients send it.
                first = self.raw("ABOR")
            else:
                # ftplib's abort(): ABOR as urgent data; it reads the first reply only.
                try:
                    first = self.ftp.abort()
                except ftplib.error_proto as e:
                    first = str(e)
            codes.append(first[:3])
            if first.startswith("426"):
                codes.append(self.ftp.getmultiline()[:3])
            sock.close()
            self.show(f"{line} + ABOR after {abort_after} bytes", codes)
            return
        if upload is not None and no_close_notify:
            sock.sendall(upload)
            # SSLSocket.close() sends no close_notify: the TCP close alone ends the upload.
            sock.close()
            codes.append(self.ftp.getmultiline()[:3])
            self.show(f"{line} (no close_notify)", codes)
            return
        if upload is not None:
            try:
                sock.sendall(upload)
                if self.prot_p:
                    sock.unwrap()
            except (OSError, ssl.SSLError):
                # The server stopped reading (a size limit): its reply says why.
                pass
        else:
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            if names:
                detail = " ".join(data.decode(self.ftp.encoding).split())
        sock.close()
        codes.append(self.ftp.getmultiline()[:3])
        self.show(line, codes, detail)

    def busy_upload(self, path):
        """An upload during which other commands come on the control connection."""
        self.pasv()
        sock = socket.create_connection(self.passive_addr, timeout=TIMEOUT)
        self.passive_addr = None
        self.cmd(f"STOR {path}")
        sock.sendall(lines_of(2000, "busy"))
        self.cmd("NOOP", label="NOOP (during the upload)")
        self.cmd("PWD", label="PWD (during the upload)")
        self.cmd("STOR /squid/other.log", label="STOR /squid/other.log (during the upload)")
        sock.sendall(lines_of(2000, "busy-more"))
        sock.close()
        self.show(f"{path} (data closed)", [self.ftp.getmultiline()[:3]])

    def quit(self):
        self.cmd("QUIT")
        self.ftp.close()


def scenario_plain(c):
    """tls = optional, active on; everything in the clear."""
    c.connect()
    c.feat()
    c.cmd("SYST")
    c.cmd("NOOP")
    c.cmd("HELP")
    c.cmd("OPTS UTF8 ON")
    c.cmd("OPTS FOO BAR")
    # Before login.
    c.cmd("PWD")
    c.cmd("CWD squid")
    c.cmd("PASV")
    c.cmd("PASS nobody", label="PASS *** (no USER)")
    c.cmd("USER anonymous")
    c.cmd("PASS guest@example.com", label="PASS ***")
    c.login(password="wrong")
    c.login()
    c.cmd("PASS again", label="PASS *** (logged in)")
    c.pwd()
    c.cmd("STAT")
    c.cmd("CWD squid")
    c.pwd()
    c.cmd("CDUP")
    c.pwd()
    c.cmd("CWD /squid")
    c.cmd("CWD ..")
    c.pwd()
    c.cmd("XPWD")
    c.cmd("CWD /nosuch")
    c.cmd("CWD /squid/nofile")
    c.cmd("TYPE I")
    c.cmd("TYPE A")
    c.cmd("TYPE A N")
    c.cmd("TYPE E")
    c.cmd("MODE S")
    c.cmd("MODE B")
    c.cmd("STRU F")
    c.cmd("STRU R")
    c.cmd("ALLO 1000")
    c.mlst("/")
    c.mlst("/squid")
    # A transfer before any PASV/EPSV/PORT/EPRT.
    c.transfer("STOR /squid/nodata.log", upload=b"x\n")
    c.transfer("LIST /")
    # Uploads, and what the folder shows of them until they are delivered.
    c.pasv()
    c.transfer("STOR /squid/a.log", upload=lines_of(10, "a"))
    c.epsv()
    c.transfer("NLST /", names=True)
    c.cmd("SIZE /squid/a.log", detail=lambda r: r[4:].strip())
    c.cmd("MDTM /squid/a.log", detail=lambda r: f"{len(r[4:].strip())} digits")
    c.mlst("/squid/a.log")
    c.cmd("SIZE /squid/none.log")
    c.cmd("SIZE /squid")
    c.cmd("MDTM /squid/none.log")
    c.pasv()
    c.transfer("LIST /squid")
    c.epsv()
    c.transfer("MLSD /squid")
    c.epsv()
    c.transfer("NLST -la /squid", names=True)
    c.epsv()
    c.transfer("NLST /squid/none.log")
    # DELE in a source folder: uploads are delivered, not deleted.
    c.cmd("DELE /squid/a.log")
    c.cmd("DELE /squid/none.log")
    c.cmd("RNFR /squid/a.log")
    c.cmd("RNTO /squid/b.log")
    c.cmd("SIZE /squid/a.log")
    c.cmd("SIZE /squid/b.log", detail=lambda r: r[4:].strip())
    c.cmd("RNTO /squid/c.log", label="RNTO /squid/c.log (no RNFR)")
    c.cmd("RNFR /squid/none.log")
    c.cmd("RNTO /squid/none2.log", label="RNTO /squid/none2.log (after a failed RNFR)")
    c.cmd("RNFR /squid/b.log")
    c.cmd("RNTO /secure/b.log")
    c.cmd("RNFR /squid/b.log")
    c.cmd("RNTO /squid")
    # Resuming is refused: an interrupted upload is discarded, not kept to resume.
    c.cmd("REST 100")
    c.pasv()
    c.transfer("STOR /squid/resumed.log", upload=lines_of(10, "r"))
    c.cmd("REST 0")
    c.pasv()
    c.transfer("STOR /squid/rest0.log", upload=lines_of(10, "z"))
    c.pasv()
    c.transfer("APPE /squid/appended.log", upload=lines_of(10, "p"))
    # max_file_bytes: exactly the limit is fine, one byte more is refused and discarded.
    c.pasv()
    c.transfer("STOR /squid/exact.log", upload=exactly(MAX_FILE))
    c.pasv()
    c.transfer("STOR /squid/too-big.log", upload=exactly(MAX_FILE + 1))
    c.cmd("SIZE /squid/too-big.log")
    c.cmd("SIZE /squid/exact.log", detail=lambda r: r[4:].strip())
    # An ftps folder takes no upload in the clear; listing it is fine.
    c.pasv()
    c.transfer("STOR /secure/x.log", upload=lines_of(10, "s"))
    c.pasv()
    c.transfer("NLST /secure", names=True)
    # Targets outside the namespace or not files.
    c.pasv()
    c.transfer("STOR /squid", upload=b"x\n")
    c.transfer("STOR /", upload=b"x\n")
    c.transfer("STOR /nosuch/x.log", upload=b"x\n")
    c.transfer("LIST /nosuch")
    # ssl_update: plain files that can be deleted and renamed.
    c.pasv()
    c.transfer("STOR /ssl_update/pure-ftpd.pem", upload=b"-----BEGIN NOTHING-----\n")
    c.epsv()
    c.transfer("NLST /ssl_update", names=True)
    c.cmd("SIZE /ssl_update/pure-ftpd.pem", detail=lambda r: r[4:].strip())
    c.cmd("RNFR /ssl_update/pure-ftpd.pem")
    c.cmd("RNTO /ssl_update/renamed.pem")
    c.cmd("SIZE /ssl_update/pure-ftpd.pem")
    c.cmd("DELE /ssl_update/renamed.pem")
    c.cmd("DELE /ssl_update/renamed.pem")
    c.epsv()
    c.transfer("NLST /ssl_update", names=True)
    # Active mode: only back to this client, never below port 1024 (no FTP bounce).
    c.cmd("PORT 127,0,0,2,39,16", label="PORT (other address)")
    c.cmd("PORT 10,1,2,3,39,16", label="PORT (remote address)")
    c.cmd("PORT 127,0,0,1,0,80", label="PORT (port 80)")
    c.cmd("PORT 127,0,0,1,3,255", label="PORT (port 1023)")
    c.cmd("PORT 1,2,3", label="PORT (malformed)")
    c.cmd("EPRT |1|10.1.2.3|5000|", label="EPRT (remote address)")
    c.cmd("EPRT |1|127.0.0.1|21|", label="EPRT (port 21)")
    c.cmd("EPRT |2|::1|5000|", label="EPRT (IPv6)")
    c.active()
    c.transfer("LIST /squid")
    c.active(extended=True)
    c.transfer("STOR /squid/active.log", upload=lines_of(10, "c"))
    c.active()
    c.transfer("NLST /squid", names=True)
    c.active_to_nobody("LIST /squid")
    # Commands this server does not have, and malformed lines.
    c.cmd("RETR /squid/b.log")
    c.cmd("SITE CHMOD 777 /squid/b.log")
    c.cmd("XYZZY")
    c.cmd("MKD /squid/sub")
    c.cmd("NOOP " + "x" * 600, label="NOOP + 600 bytes")
    c.cmd("NOOP")
    c.cmd("NO\x00OP", label="NO<NUL>OP")
    c.cmd("4LL")
    # TLS commands in the wrong order.
    c.cmd("PBSZ 0")
    c.cmd("PROT P")
    c.cmd("AUTH KERBEROS_V4")
    # ABOR with nothing to abort, and in the middle of an upload.
    c.cmd("ABOR")
    c.pasv()
    c.transfer(
        "STOR /squid/aborted.log", upload=lines_of(20000, "abort"), abort_after=65536
    )
    c.cmd("NOOP")
    c.cmd("SIZE /squid/aborted.log")
    c.busy_upload("/squid/busy.log")
    c.cmd("EPSV 1")
    c.cmd("EPSV 2")
    c.cmd("EPSV 3")
    c.cmd("EPSV ALL")
    c.cmd("PASV")
    c.cmd("PORT 127,0,0,1,39,16", label="PORT (after EPSV ALL)")
    c.epsv()
    c.transfer("NLST /squid", names=True)
    c.quit()


def scenario_tls(c):
    """FTP_TLS with tls = optional: AUTH TLS, PBSZ, PROT P and C."""
    c.connect()
    c.feat()
    c.cmd("PBSZ 0")
    c.auth_tls()
    c.cmd("AUTH TLS", label="AUTH TLS (again)")
    c.cmd("PROT P", label="PROT P (no PBSZ)")
    c.cmd("PBSZ 0")
    c.login()
    c.cmd("PROT X")
    # Still PROT C: the ftps folder refuses, the ftp folder takes it.
    c.pasv()
    c.transfer("STOR /secure/clear.log", upload=lines_of(10, "c"))
    c.pasv()
    c.transfer("STOR /squid/clear.log", upload=lines_of(10, "c"))
    c.prot("P")
    c.pasv()
    c.transfer("STOR /secure/private.log", upload=lines_of(10, "p"))
    c.epsv()
    c.transfer("STOR /squid/private.log", upload=lines_of(10, "q"))
    c.epsv()
    c.transfer("NLST /secure", names=True)
    c.pasv()
    c.transfer("MLSD /")
    c.active()
    c.transfer("LIST /secure")
    c.prot("C")
    c.epsv()
    c.transfer("STOR /secure/clear-again.log", upload=lines_of(10, "c"))
    c.epsv()
    c.transfer("NLST /secure", names=True)
    c.prot("P")
    c.pasv()
    c.transfer(
        "STOR /secure/aborted.log", upload=lines_of(20000, "abort"), abort_after=65536
    )
    c.cmd("SIZE /secure/aborted.log")
    c.cmd("CCC")
    c.cmd("STAT")
    c.quit()


def scenario_truncated(c):
    """An FTPS upload whose data connection ends without a TLS close_notify."""
    c.connect()
    c.auth_tls()
    c.cmd("PBSZ 0")
    c.login()
    c.prot("P")
    c.pasv()
    c.transfer("STOR /secure/cut.log", upload=lines_of(5000, "cut"), no_close_notify=True)
    c.epsv()
    c.transfer("NLST /secure", names=True)
    c.epsv()
    c.transfer("STOR /secure/whole.log", upload=lines_of(5000, "whole"))
    c.epsv()
    c.transfer("NLST /secure", names=True)
    c.quit()


def scenario_required(c):
    """tls = required: nothing before AUTH TLS, no data without PROT P."""
    c.connect()
    c.feat()
    c.cmd("USER " + c.user)
    c.cmd("PASS " + c.password, label="PASS ***")
    c.cmd("PWD")
    c.auth_tls()
    c.login()
    c.pasv()
    c.transfer("LIST /")
    c.transfer("STOR /squid/a.log", upload=lines_of(10, "a"))
    c.cmd("PBSZ 0")
    c.prot("P")
    c.pasv()
    c.transfer("NLST /", names=True)
    c.epsv()
    c.transfer("STOR /squid/a.log", upload=lines_of(10, "a"))
    c.epsv()
    c.transfer("STOR /secure/b.log", upload=lines_of(10, "b"))
    c.prot("C")
    c.pasv()
    c.transfer("NLST /squid", names=True)
    c.quit()


def scenario_required_plain(c):
    """tls = required, a client that never says AUTH TLS."""
    c.connect()
    c.cmd("USER " + c.user)
    c.cmd("USER anonymous")
    c.cmd("PASS " + c.password, label="PASS ***")
    c.cmd("CWD squid")
    c.cmd("PASV")
    c.quit()


def scenario_public(c):
    """[ftp] public_address: PASV advertises it, EPSV names only the port."""
    c.connect()
    c.login()
    c.cmd("PASV", detail=lambda r: ftplib.parse227(r)[0])
    c.epsv()
    c.transfer("NLST /", names=True)
    c.quit()


def scenario_ipv6(c):
    """Over IPv6: EPSV and EPRT, no PASV."""
    c.connect()
    c.login()
    c.cmd("PASV")
    c.epsv()
    c.transfer("NLST /", names=True)
    c.epsv()
    c.transfer("STOR /squid/v6.log", upload=lines_of(10, "v6"))
    c.cmd("PORT 127,0,0,1,39,16", label="PORT (IPv4)")
    c.cmd("EPRT |1|127.0.0.1|10000|", label="EPRT (IPv4)")
    c.cmd("EPRT |2|::2|10000|", label="EPRT (another IPv6 address)")
    c.active(extended=True)
    c.transfer("NLST /squid", names=True)
    c.quit()


def scenario_active_off(c):
    """active = off, tls = off."""
    c.connect()
    c.feat()
    c.cmd("AUTH TLS")
    c.login()
    c.cmd("PORT 127,0,0,1,39,16")
    c.cmd("EPRT |1|127.0.0.1|10000|")
    c.epsv()
    c.transfer("STOR /squid/a.log", upload=lines_of(10, "a"))
    c.pasv()
    c.transfer("NLST /squid", names=True)
    c.quit()


def scenario_traversal(c):
    """Paths that try to leave the namespace; tests/it/ftp.rs plants a symlink
    ssl_update/link -> /etc/passwd and a file ssl_update/real.pem first."""
    c.connect()
    c.login()
    c.cmd("CWD ..")
    c.pwd()
    c.cmd("CWD ../../etc")
    c.pwd()
    c.cmd("CWD /etc")
    c.cmd("CWD //etc")
    c.cmd("CWD ~")
    c.cmd("CWD ~root")
    c.cmd("CWD %2e%2e")
    c.cmd("CWD %2e%2e/%2e%2e/etc")
    c.cmd("CWD ..\\..\\etc")
    c.cmd("CWD squid/../../etc")
    c.cmd("CWD squid/../squid/./")
    c.pwd()
    c.cmd("CWD ..")
    c.pwd()
    c.cmd("CWD ../..")
    c.pwd()
    c.cmd("SIZE ../../../etc/passwd")
    c.cmd("SIZE /etc/passwd")
    c.cmd("SIZE /squid/../../etc/passwd")
    c.cmd("SIZE squid/..%2f..%2fetc%2fpasswd")
    c.cmd("SIZE /squid/%2e%2e%2f%2e%2e%2fetc%2fpasswd")
    c.cmd("SIZE /squid/..\\..\\etc\\passwd")
    c.cmd("SIZE /squid/a\x00b", label="SIZE /squid/a<NUL>b")
    c.cmd("SIZE /squid/.sidecar")
    c.cmd("MDTM /etc/passwd")
    c.cmd("MLST /etc/passwd")
    c.cmd("MLST ../../etc")
    c.cmd("DELE /etc/passwd")
    c.cmd("DELE ../../etc/passwd")
    c.cmd("RNFR /etc/passwd")
    c.cmd("RNFR /ssl_update/real.pem")
    c.cmd("RNTO ../../tmp/stolen.pem")
    c.cmd("RNFR /ssl_update/real.pem")
    c.cmd("RNTO /ssl_update/../../tmp/stolen.pem")
    c.cmd("RNFR /ssl_update/real.pem")
    c.cmd("RNTO /ssl_update/.hidden.pem")
    c.cmd("RETR /etc/passwd")
    c.passive("LIST /etc")
    c.passive("LIST ../../etc")
    c.passive("NLST /squid/../..", names=True)
    c.passive("STOR ../x")
    c.passive("STOR /etc/x")
    c.passive("STOR ../../../tmp/x")
    c.passive("STOR /squid/../../tmp/x")
    c.passive("STOR /squid/..\\..\\tmp\\x")
    c.passive("STOR /squid/.x")
    c.passive("STOR /squid/a/b")
    c.passive("STOR /squid/" + "n" * 300)
    c.passive("APPE /etc/x")
    c.cmd("CWD squid")
    c.passive("STOR ../x")
    c.passive("STOR ../../etc/x")
    c.cmd("CDUP")
    # The symlink: not listed, not statted, not deleted, not renamed; an upload replaces
    # the link itself, never what it points to.
    c.passive("NLST /ssl_update", names=True)
    c.passive("LIST /ssl_update/link")
    c.cmd("SIZE /ssl_update/link")
    c.cmd("MDTM /ssl_update/link")
    c.cmd("MLST /ssl_update/link")
    c.cmd("DELE /ssl_update/link")
    c.cmd("RNFR /ssl_update/link")
    c.cmd("RNTO /ssl_update/moved")
    c.passive("STOR /ssl_update/link", upload=b"not a password file\n")
    c.cmd("SIZE /ssl_update/link", detail=lambda r: r[4:].strip())
    c.quit()


def fixture(name):
    """A file tests/it/ftp_fidelity.rs prepared in $LC_FIXTURES."""
    with open(os.path.join(os.environ["LC_FIXTURES"], name), "rb") as f:
        return f.read()


def wait_delivered(n):
    """Polls $LC_OUTBOX (with a deadline) until it holds `n` files: what follows runs after
    lc delivered, and so removed from its spool, what came before."""
    outbox = os.environ["LC_OUTBOX"]
    deadline = time.monotonic() + TIMEOUT
    # Each delivered file has a manifest beside it, written after it: count the manifests.
    while len([f for f in os.listdir(outbox) if f.endswith(".manifest")]) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{outbox}: fewer than {n} files after {TIMEOUT}s")
        time.sleep(0.05)


def size_of(resp):
    return resp[4:].strip() if resp.startswith("213") else None


def scenario_fidelity(c):
    """What the vendor's pure-ftpd does with uploads (issue 10), url = dir: (instant delivery)."""
    c.connect()
    c.feat()
    c.login()
    c.cmd("TYPE I")
    # Compressed files: delivered as they are, whatever their name says.
    c.pasv()
    c.transfer("STOR /squid/fw.log.gz", upload=fixture("fw.log.gz"))
    c.cmd("SIZE /squid/fw.log.gz", detail=size_of)
    c.pasv()
    c.transfer("STOR /squid/fw.zip", upload=fixture("fw.zip"))
    c.pasv()
    c.transfer("STOR /squid/misnamed.txt", upload=fixture("fw.log.gz"))
    # TYPE A (RFC 959's default, Windows ftp.exe's): CRLF becomes LF.
    c.cmd("TYPE A")
    c.pasv()
    c.transfer("STOR /squid/crlf.log", upload=fixture("crlf.log"))
    c.cmd("SIZE /squid/crlf.log", detail=size_of)
    wait_delivered(4)
    # After delivery, the file is still known for a while: SIZE, MDTM, MLST, STAT.
    c.cmd("SIZE /squid/fw.log.gz", label="SIZE /squid/fw.log.gz (delivered)", detail=size_of)
    c.cmd("MDTM /squid/fw.zip", label="MDTM /squid/fw.zip (delivered)",
          detail=lambda r: f"{len(r[4:].strip())} digits")
    c.mlst("/squid/crlf.log")
    c.cmd("STAT /squid/fw.zip", detail=lambda r: r.splitlines()[1].split()[-1])
    c.cmd("STAT /squid")
    c.cmd("STAT /nosuch")
    c.epsv()
    c.transfer("NLST /squid", names=True)
    # WinSCP: upload NAME.filepart, check its size, rename it to NAME (after delivery here).
    c.cmd("TYPE I")
    c.pasv()
    c.transfer("STOR /squid/winscp.log.filepart", upload=lines_of(100, "winscp"))
    c.cmd("SIZE /squid/winscp.log.filepart", detail=size_of)
    wait_delivered(5)
    c.cmd("RNFR /squid/winscp.log.filepart")
    c.cmd("RNTO /squid/winscp.log")
    c.cmd("SIZE /squid/winscp.log", detail=size_of)
    c.cmd("MDTM /squid/winscp.log", detail=lambda r: f"{len(r[4:].strip())} digits")
    c.cmd("SIZE /squid/winscp.log.filepart")
    c.cmd("RNFR /squid/never-uploaded.log")
    c.epsv()
    c.transfer("NLST /squid", names=True)
    # A Latin-1 file name, as pure-ftpd takes it: bytes kept, listed as sent.
    c.ftp.encoding = "latin-1"
    c.ftp.file = c.ftp.sock.makefile("r", encoding="latin-1")
    c.pasv()
    c.transfer("STOR /squid/caf\xe9.log", upload=lines_of(10, "latin1"))
    c.cmd("SIZE /squid/caf\xe9.log", detail=size_of)
    c.epsv()
    c.transfer("NLST /squid/caf\xe9.log", names=True)
    c.ftp.encoding = "utf-8"
    c.ftp.file = c.ftp.sock.makefile("r", encoding="utf-8")
    # Protocol defects an FTP conformance suite found.
    c.cmd("OPTS MLST type;")
    c.mlst("/squid/fw.zip")
    c.feat()
    c.cmd("OPTS MLST type;size;modify;")
    c.epsv()
    c.transfer("MLSD /squid/fw.zip")
    c.cmd("TYPE")
    c.cmd("MODE")
    c.cmd("STRU")
    c.cmd("PROT")
    c.quit()


def scenario_ipv6_pasv(c):
    """Over IPv6, a refused PASV leaves no data channel behind."""
    c.connect()
    c.login()
    c.cmd("PASV")
    c.transfer("STOR /squid/after-pasv.log", upload=b"x\n")
    c.epsv()
    c.transfer("STOR /squid/after-epsv.log", upload=b"x\n")
    c.quit()


SCENARIOS = {
    "fidelity": (scenario_fidelity, False),
    "ipv6-pasv": (scenario_ipv6_pasv, False),
    "plain": (scenario_plain, False),
    "tls": (scenario_tls, True),
    "truncated": (scenario_truncated, True),
    "required": (scenario_required, True),
    "required-plain": (scenario_required_plain, False),
    "active-off": (scenario_active_off, False),
    "public": (scenario_public, False),
    "ipv6": (scenario_ipv6, False),
    "traversal": (scenario_traversal, False),
}


def main():
    name, host, port, user, password, ca_file = sys.argv[1:7]
    run, tls = SCENARIOS[name]
    run(Client(host, int(port), user, password, ca_file, tls))


if __name__ == "__main__":
    main()

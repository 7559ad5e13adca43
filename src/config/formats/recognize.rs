//! The recognizers: one small pure function per log format, over a [`Line`] (the header
//! skipped once, `line.rs`). Each tests fixed tokens, prefixes and field shapes in the first
//! [`super::line::WINDOW`] bytes: no regex, no allocation. Which source type names each one
//! covers, and which formats it cannot be told apart from, is `mod.rs`'s table.
//!
//! The shapes are taken from the vendors' published log format references (cited per
//! function); `tests/corpus/formats/` holds lines written from them.
//!
//! A native recognizer refuses CEF and LEEF lines: a FortiGate or Palo Alto sending CEF is
//! exactly the mismatch `lc check` is for, since the native parser cannot read it.

use super::line::{count_digits, digits, is_clock, is_iso_date, token, Envelope, Line};

fn native(l: &Line) -> bool {
    !l.is_enveloped()
}

fn cef_vendor(l: &Line, vendors: &[&[u8]]) -> bool {
    matches!(l.envelope, Envelope::Cef { vendor, .. } if vendors.contains(&vendor))
}

fn leef_vendor(l: &Line, vendors: &[&[u8]]) -> bool {
    matches!(l.envelope, Envelope::Leef { vendor, .. } if vendors.contains(&vendor))
}

/// Any CEF line (ArcSight "Common Event Format", `CEF:0|Vendor|Product|Version|ID|Name|Sev|ext`).
pub fn cef(l: &Line) -> bool {
    matches!(l.envelope, Envelope::Cef { .. })
}

/// Any LEEF 1.0 or 2.0 line (`LEEF:1.0|Vendor|Product|Version|EventID|attrs`).
pub fn leef(l: &Line) -> bool {
    matches!(l.envelope, Envelope::Leef { .. })
}

pub fn checkpoint_cef(l: &Line) -> bool {
    cef_vendor(l, &[b"Check Point", b"CheckPoint"])
}

pub fn forcepoint_cef(l: &Line) -> bool {
    cef_vendor(l, &[b"Forcepoint", b"Websense"])
}

pub fn forcepoint_leef(l: &Line) -> bool {
    leef_vendor(l, &[b"Forcepoint", b"Websense"])
}

pub fn zscaler_cef(l: &Line) -> bool {
    cef_vendor(l, &[b"Zscaler"])
}

pub fn zscaler_leef(l: &Line) -> bool {
    leef_vendor(l, &[b"Zscaler"])
}

pub fn paloalto_leef(l: &Line) -> bool {
    leef_vendor(l, &[b"Palo Alto Networks"])
}

/// PAN-OS syslog (PAN-OS "Syslog Field Descriptions"): comma-separated, `FUTURE_USE,Receive
/// Time,Serial Number,Type,...` with the receive time as `YYYY/MM/DD hh:mm:ss` and the type one
/// of the log types.
pub fn paloalto(l: &Line) -> bool {
    const TYPES: &[&[u8]] = &[
        b"TRAFFIC",
        b"THREAT",
        b"SYSTEM",
        b"CONFIG",
        b"HIPMATCH",
        b"GLOBALPROTECT",
        b"USERID",
        b"DECRYPTION",
        b"AUTHENTICATION",
        b"CORRELATION",
        b"TUNNEL",
        b"IPTAG",
        b"SCTP",
        b"GTP",
    ];
    native(l)
        && l.any_start(|s| {
            let n = count_digits(s);
            let Some(rest) = s.get(n..).and_then(|r| r.strip_prefix(b",")) else {
                return false;
            };
            // YYYY/MM/DD hh:mm:ss,
            if n > 4 || rest.len() < 21 || !digits(&rest[..4]) || rest[4] != b'/' {
                return false;
            }
            if rest[7] != b'/' || rest[10] != b' ' || !is_clock(&rest[11..]) || rest[19] != b',' {
                return false;
            }
            let rest = &rest[20..];
            let Some(i) = memchr::memchr(b',', rest) else {
                return false;
            };
            let rest = &rest[i + 1..];
            let ty = rest.split(|&b| b == b',').next().unwrap_or_default();
            TYPES.contains(&ty)
        })
}

/// Check Point Log Exporter (R80.x "Log Exporter" syslog format `[action:"Accept"; ...]` and
/// its `key=value|` generic format) and the older OPSEC LEA exports (`product=VPN-1 &
/// FireWall-1`).
pub fn checkpoint(l: &Line) -> bool {
    if !native(l) {
        return false;
    }
    if l.contains(b"loguid") || l.contains(b"originsicname") {
        return true;
    }
    // Log Exporter's syslog format puts every field in RFC 5424 structured data, which
    // `render = vendor` drops as the vendor's collector does: `CheckPoint[26203] ` is all that
    // is left of such a line.
    if l.any_start(|s| {
        s.strip_prefix(b"CheckPoint[")
            .map(|r| count_digits(r) > 0 && r[count_digits(r)..].starts_with(b"] "))
            .unwrap_or(false)
            && token(s).1.is_empty()
    }) {
        return true;
    }
    let cp = l.contains(b"CheckPoint") || l.contains(b"Check Point");
    let product = l.contains(b"product=") || l.contains(b"product:\"");
    (cp || product)
        && (l.contains(b"action:\"") || l.contains(b"action="))
        && (l.contains(b"i/f_dir") || l.contains(b"ifdir") || l.contains(b"origin"))
}

/// FortiOS log messages (FortiOS "Log Message Reference"): `key=value` pairs starting with
/// `date= time= devname= devid= logid= type= subtype=`; FortiOS 6.2+ adds `eventtime=`.
pub fn fortigate(l: &Line) -> bool {
    native(l)
        && l.contains(b"devname=")
        && (l.contains(b"logid=") || l.contains(b"devid=") || l.contains(b"subtype="))
        && l.contains(b"type=")
}

/// `%PREFIX-` then `LEVEL-MSGID:` (optionally a facility word first, `%ASA-session-6-305011:`).
fn cisco_tag(l: &Line, prefix: &[u8]) -> bool {
    let Some(rest) = l.after(prefix) else {
        return false;
    };
    let head = &rest[..rest.len().min(24)];
    let Some(colon) = memchr::memchr(b':', head) else {
        return false;
    };
    let id = &head[..colon];
    // The message ID is the last dash-separated part: six digits.
    let last = id.rsplit(|&b| b == b'-').next().unwrap_or_default();
    last.len() >= 5 && digits(last)
}

/// Cisco ASA syslog (ASA "Syslog Messages"): `%ASA-6-302013: ...`.
pub fn cisco_asa(l: &Line) -> bool {
    native(l) && cisco_tag(l, b"%ASA-")
}

/// Cisco Firepower Threat Defense: `%FTD-6-430003: ...` (connection events as
/// `AccessControlRuleAction: Allow, SrcIP: ...`), and FMC's syslog of connection events.
pub fn cisco_ftd(l: &Line) -> bool {
    native(l)
        && (cisco_tag(l, b"%FTD-")
            || (l.contains(b"AccessControlRuleAction: ") && l.contains(b"SrcIP: ")))
}

/// Cisco Meraki syslog (Meraki "Syslog Event Types and Log Samples"): `1 EPOCH.NANOS DEVICE
/// TYPE ...` with TYPE one of Meraki's event types.
pub fn meraki(l: &Line) -> bool {
    const TYPES: &[&[u8]] = &[
        b"flows",
        b"urls",
        b"firewall",
        b"vpn_firewall",
        b"cellular_firewall",
        b"bridge_anyconnect_client_vpn_firewall",
        b"ids-alerts",
        b"security_event",
        b"events",
        b"ip_flow_start",
        b"ip_flow_end",
        b"airmarshal_events",
    ];
    native(l)
        && l.any_start(|s| {
            let s = s.strip_prefix(b"1 ").unwrap_or(s);
            let n = count_digits(s);
            if n != 10 || s.get(10) != Some(&b'.') {
                return false;
            }
            let (stamp, rest) = token(s);
            if !digits(&stamp[11..]) {
                return false;
            }
            let (_device, rest) = token(rest);
            let (ty, _) = token(rest);
            TYPES.contains(&ty)
        })
}

/// Cisco Umbrella's S3 log exports (Umbrella "Log Formats and Versioning"): quoted CSV from
/// `"YYYY-MM-DD hh:mm:ss"`, DNS logs with a DNS response code, proxy logs with
/// `"ALLOWED"`/`"BLOCKED"`.
pub fn umbrella(l: &Line) -> bool {
    native(l)
        && l.any_start(|s| {
            s.len() > 22
                && s[0] == b'"'
                && is_iso_date(&s[1..])
                && s[11] == b' '
                && is_clock(&s[12..])
                && s[20] == b'"'
                && s[21] == b','
        })
        && [
            &b"\"NOERROR\""[..],
            b"\"NXDOMAIN\"",
            b"\"SERVFAIL\"",
            b"\"REFUSED\"",
            b"\"ALLOWED\"",
            b"\"BLOCKED\"",
        ]
        .iter()
        .any(|t| l.contains(t))
}

/// Squid's native access.log (`logformat squid %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru
/// %[un %Sh/%<a %mt`).
pub fn squid_native(l: &Line) -> bool {
    native(l)
        && l.any_start(|s| {
            let n = count_digits(s);
            if !(9..=10).contains(&n) || s.get(n) != Some(&b'.') || count_digits(&s[n + 1..]) != 3 {
                return false;
            }
            let (_, rest) = token(s);
            let (elapsed, rest) = token(rest);
            let (_client, rest) = token(rest);
            let (code, rest) = token(rest);
            let (bytes, _) = token(rest);
            digits(elapsed) && digits(bytes) && squid_code(code, b'/')
        })
}

/// `TCP_MISS/200`, `NONE_NONE/000`, `TCP_MISS:HIER_DIRECT`: a result code, `sep`, and more.
fn squid_code(code: &[u8], sep: u8) -> bool {
    let Some(i) = memchr::memchr(sep, code) else {
        return false;
    };
    let word = &code[..i];
    i >= 3 && word.iter().all(|b| b.is_ascii_uppercase() || *b == b'_') && code.len() > i + 1
}

/// Squid's `common` logformat (`%>a %[ui %[un [%tl] "%rm %ru HTTP/%rv" %>Hs %<st %Ss:%Sh`):
/// Apache's common log format with squid's result and hierarchy codes at the end.
pub fn squid_common(l: &Line) -> bool {
    native(l)
        && l.any_start(|s| {
            let (_client, rest) = token(s);
            let (_ident, rest) = token(rest);
            let (_user, rest) = token(rest);
            // [09/Apr/2019:16:03:37 +0000] "
            if rest.len() < 30 || rest[0] != b'[' || rest[3] != b'/' || rest[7] != b'/' {
                return false;
            }
            let Some(close) = memchr::memmem::find(rest, b"\" ") else {
                return false;
            };
            let (status, rest) = token(&rest[close + 2..]);
            let (bytes, rest) = token(rest);
            let (code, _) = token(rest);
            digits(status) && (digits(bytes) || bytes == b"-") && squid_code(code, b':')
        })
}

/// `YYYY-MM-DD hh:mm:ss ` at the start (the W3C extended log format's `date time` fields), and
/// the length of it. A bare line like this stored with `render = vendor` reads
/// `YYYY-MM-DD hh: mm:ss`: rsyslog takes the date for the host and `hh:` for the tag, and puts
/// a space after it.
fn w3c_datetime(s: &[u8]) -> Option<usize> {
    if s.len() < 21 || !is_iso_date(s) || s[10] != b' ' {
        return None;
    }
    let t = &s[11..];
    let n = if is_clock(t) {
        8
    } else if t.len() > 10 && t[2] == b':' && t[3] == b' ' && digits(&t[..2]) && is_mm_ss(&t[4..]) {
        9
    } else {
        return None;
    };
    (t.get(n) == Some(&b' ')).then_some(11 + n + 1)
}

/// `mm:ss`
fn is_mm_ss(s: &[u8]) -> bool {
    s.len() >= 5 && digits(&s[..2]) && s[2] == b':' && digits(&s[3..5])
}

/// Blue Coat ProxySG access logs (SGOS "Access Log Formats", `main` and `bcreportermain_v1`
/// ELFF): W3C `date time` then fields that include the ProxySG's `s-action` (`TCP_NC_MISS`,
/// `TCP_TUNNELED`, `TCP_DENIED`, ...) and filter results (`OBSERVED`, `PROXIED`, `DENIED`).
pub fn bluecoat(l: &Line) -> bool {
    native(l)
        && l.any_start(|s| {
            (w3c_datetime(s).is_some() || s.starts_with(b"#Software: SGOS"))
                && (memchr::memmem::find(s, b" TCP_").is_some()
                    || memchr::memmem::find(s, b" OBSERVED ").is_some()
                    || memchr::memmem::find(s, b" PROXIED ").is_some()
                    || s.starts_with(b"#Software: SGOS"))
        })
}

/// The W3C Extended Log File Format (W3C WD-logfile-960323) as IIS, ISA and proxies write it:
/// `#Fields:`-style directives, and data lines from `date time` with space-separated fields.
pub fn w3c(l: &Line) -> bool {
    native(l)
        && l.any_start(|s| {
            if s.starts_with(b"#Fields: ")
                || s.starts_with(b"#Software: ")
                || s.starts_with(b"#Version: ")
                || s.starts_with(b"#Date: ")
            {
                return true;
            }
            let Some(n) = w3c_datetime(s) else {
                return false;
            };
            // At least five more fields after `date time`.
            let fields = s[n..].iter().filter(|&&b| b == b' ').count();
            fields >= 5
        })
}

/// Zscaler NSS web logs (Zscaler "NSS Feed Output Format: Web Logs"): the default feed,
/// quoted CSV from `"%s{time}"` (`"Mon Jun 20 15:29:11 2016"`), and the tab-separated
/// `key=value` feeds with Zscaler's field names.
pub fn zscaler(l: &Line) -> bool {
    if !native(l) {
        return false;
    }
    let csv = l.any_start(|s| {
        s.len() > 27
            && s[0] == b'"'
            && s[4] == b' '
            && super::line::is_month(&s[5..8])
            && s[8] == b' '
            && is_clock(&s[12..])
            && s[20] == b' '
            && digits(&s[21..25])
            && s[25] == b'"'
    });
    csv || (l.contains(b"urlcategory=")
        && (l.contains(b"ClientIP=") || l.contains(b"clientip=") || l.contains(b"cip="))
        && (l.contains(b"reason=") || l.contains(b"action=")))
}

/// Juniper SRX with the standard syslog format (Junos "System Log Explorer", RT_FLOW):
/// `RT_FLOW: RT_FLOW_SESSION_CREATE: session created ...`.
pub fn srx(l: &Line) -> bool {
    native(l) && !l.contains(b"[junos@") && srx_message_id(l)
}

/// The event names of the standard format, which the structured one keeps in MSGID (and
/// `render = vendor` drops with it).
fn srx_message_id(l: &Line) -> bool {
    l.contains(b"RT_FLOW_SESSION_")
        || l.contains(b"RT_FLOW: ")
        || l.contains(b"RT_UTM: ")
        || l.contains(b"RT_IDP: ")
        || l.contains(b"RT_SCREEN_")
        || l.contains(b"APPTRACK_SESSION_")
}

/// Juniper SRX with `structured-data` (RFC 5424 structured data `[junos@2636.1.1.1.2.N ...]`).
/// Stored with `render = vendor` the structured data and MSGID are gone, as in the vendor's
/// collector (its traditional file format has no field for them): what is left is the
/// APP-NAME as the tag, without a colon, and the free text (`RT_FLOW session created ...`).
pub fn srx_sd(l: &Line) -> bool {
    const APPS: &[&[u8]] = &[
        b"RT_FLOW",
        b"RT_UTM",
        b"RT_IDP",
        b"RT_SCREEN",
        b"RT_AAMW",
        b"RT_SECINTEL",
        b"APPTRACK",
    ];
    native(l)
        && (l.contains(b"[junos@2636.")
            || (!srx_message_id(l)
                && l.any_start(|s| {
                    let (tag, _) = token(s);
                    APPS.contains(&tag) && s.get(tag.len()) == Some(&b' ')
                })))
}

/// SonicWall (SonicOS "Log Events Reference Guide"): enhanced syslog `id=firewall sn=SERIAL
/// time="..." fw=IP pri=N c=CAT m=MSGID ...`.
pub fn sonicwall(l: &Line) -> bool {
    native(l)
        && l.contains(b"sn=")
        && l.contains(b" fw=")
        && l.contains(b" pri=")
        && l.contains(b" m=")
}

/// Sophos XG / Sophos Firewall (SFOS "Log file details"): `device="SFW"` (v17, v18) or
/// `device_name="SFW"` (v19+) with `log_type=` and `log_id=` or `log_component=`.
pub fn sophos_xg(l: &Line) -> bool {
    native(l)
        && l.contains(b"log_type=")
        && (l.contains(b"log_id=") || l.contains(b"log_component="))
        && (l.contains(b"device=\"SFW\"")
            || l.contains(b"device_name=\"SFW\"")
            || l.contains(b"device_model=\"XG")
            || l.contains(b"device_model=\"XGS"))
}

/// Sophos UTM / SG (UTM 9 log lines): `id="0001" severity="info" sys="SecureWeb" sub="http"
/// name="http access" ...`.
pub fn sophos_sg(l: &Line) -> bool {
    native(l)
        && l.contains(b"id=\"")
        && l.contains(b" sys=\"")
        && l.contains(b" sub=\"")
        && l.contains(b"severity=\"")
}

/// Barracuda Web Security Gateway / Web Filter syslog (Barracuda "Syslog and the Barracuda Web
/// Security Gateway"): space-separated `EPOCH DURATION CLIENT_IP REQUEST_IP CONTENT_TYPE
/// DEST_IP URL SIZE BYF ACTION REASON ...`.
pub fn barracuda_wsg(l: &Line) -> bool {
    const ACTIONS: &[&[u8]] = &[b"ALLOWED", b"BLOCKED", b"DETECTED", b"WARNED", b"MONITORED"];
    native(l)
        && l.any_start(|s| {
            let (epoch, mut rest) = token(s);
            if epoch.len() != 10 || !digits(epoch) {
                return false;
            }
            let mut field: &[u8] = &[];
            for i in 1..=9 {
                (field, rest) = token(rest);
                if i == 1 && !digits(field) {
                    return false;
                }
            }
            ACTIONS.contains(&field)
        })
}

/// Barracuda CloudGen / NextGen Firewall activity log (`box_Firewall_Activity`): `Allow:
/// type=FWD|proto=TCP|srcIF=...|srcIP=...`.
pub fn barracuda_ngfw(l: &Line) -> bool {
    native(l)
        && (l.contains(b"box_Firewall_Activity")
            || (l.contains(b"type=") && l.contains(b"|proto=") && l.contains(b"|srcIP=")))
}

/// WatchGuard Fireware (Fireware "Log Catalog"): a `msg_id="XXXX-XXXX"` in every traffic and
/// proxy message.
pub fn watchguard(l: &Line) -> bool {
    let Some(rest) = l.after(b"msg_id=\"") else {
        return false;
    };
    native(l)
        && rest.len() > 10
        && rest[4] == b'-'
        && rest[9] == b'"'
        && rest[..4].iter().all(u8::is_ascii_hexdigit)
        && rest[5..9].iter().all(u8::is_ascii_hexdigit)
}

/// pfSense / OPNsense `filterlog` (pfSense "Filter Log Format"): CSV `RULE,SUB,ANCHOR,TRACKER,
/// IFACE,REASON,ACTION,DIR,IPVER,...`, REASON `match`, ACTION `pass|block|reject`.
pub fn pfsense(l: &Line) -> bool {
    let Some(rest) = l.after(b",match,") else {
        return false;
    };
    native(l)
        && (rest.starts_with(b"pass,")
            || rest.starts_with(b"block,")
            || rest.starts_with(b"reject,"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(f: fn(&Line) -> bool, line: &str, expected: bool) {
        assert_eq!(f(&Line::new(line.as_bytes())), expected, "{line}");
    }

    #[test]
    fn edge_cases() {
        // ASA message IDs are six digits; a stray `%ASA-` in text is not a message.
        check(cisco_asa, "%ASA-6-302013: Built", true);
        check(cisco_asa, "note: %ASA-x is down", false);
        check(cisco_asa, "%ASA-", false);
        check(cisco_ftd, "%FTD-6-430002: EventPriority: Low", true);
        // CEF from a native vendor is not native.
        check(
            cisco_asa,
            "CEF:0|Cisco|ASA|9|302013|%ASA-6-302013: Built|3|",
            false,
        );
        check(paloalto, "1,2019/04/09 16:03:37,0070,TRAFFIC,end,", true);
        check(paloalto, "1,2019/04/09 16:03:37,0070,NOPE,end,", false);
        check(paloalto, "1,2019/04/09 16:03", false);
        check(
            squid_native,
            "1554825817.123      0 10.0.0.1 TCP_DENIED/403 0 GET",
            true,
        );
        check(
            squid_native,
            "1554825817.123 0 10.0.0.1 tcp_denied/403 0 GET",
            false,
        );
        check(watchguard, "msg_id=\"3000-0148\" Allow", true);
        check(watchguard, "msg_id=\"30", false);
        check(pfsense, "5,,,1000000103,igb1,match,block,in,4", true);
        check(pfsense, ",match,", false);
        check(meraki, "1 1554825817.123 MX84 flows src=1", true);
        check(meraki, "1 1554825817.123 MX84", false);
        check(barracuda_wsg, "1554825817 1", false);
    }
}

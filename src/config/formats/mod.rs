//! The MDCA source type names accepted by `format =` (the `source` values the Cloud Discovery
//! upload API documents for `GET /api/v1/discovery/upload_url/`, kept sorted for the error
//! message), and which log format each name expects: [`Family`], one per format lc can
//! recognize, with the names it covers and the families it cannot be told apart from.
//!
//! The recognizers (`recognize.rs`) are pure functions of one line over the view `line.rs`
//! computes; this file is their table and the API the rest of lc uses: [`Family::of`] once
//! per source (at config time), then per line one [`Line::new`] (the header skip, no
//! allocation), [`Family::recognizes`] (is this line the configured format?) and, for the lines
//! that are not, [`guess`] (what does it look like instead?). `format_check.rs` (`lc check`)
//! counts over files with them; `window.rs` is the live per-source counting over the same functions.

mod line;
mod recognize;
pub mod window;

pub use line::Line;
use recognize as r;

pub const FORMATS: &[&str] = &[
    "BARRACUDA",
    "BARRACUDA_NEXT_GEN_FW",
    "BARRACUDA_NEXT_GEN_FW_WEBLOG",
    "BARRACUDA_SYSLOG",
    "BLUECOAT",
    "BLUECOAT_SYSLOG",
    "CHECKPOINT",
    "CHECKPOINT_CEF_SYSLOG",
    "CHECKPOINT_SMART_VIEW_TRACKER",
    "CHECKPOINT_XML",
    "CISCO_ASA",
    "CISCO_ASA_FIREPOWER_SYSLOG",
    "CISCO_ASA_SYSLOG",
    "CISCO_FIREPOWER_V6_SYSLOG",
    "CISCO_FWSM",
    "CISCO_FWSM_SYSLOG",
    "CISCO_IRONPORT_PROXY",
    "CISCO_IRONPORT_PROXY_SYSLOG",
    "CISCO_IRONPORT_WSA_II",
    "CISCO_IRONPORT_WSA_III",
    "CISCO_SCAN_SAFE",
    "CLAVISTER_SYSLOG",
    "CONTENTKEEPER_SYSLOG",
    "CORRATA",
    "FORCEPOINT",
    "FORCEPOINT_LEEF_SYSLOG",
    "FORTIGATE",
    "FORTIGATE_SYSLOG",
    "FORTIOS_SYSLOG",
    "GENERIC_CEF",
    "GENERIC_CEF_SYSLOG",
    "GENERIC_LEEF",
    "GENERIC_LEEF_SYSLOG",
    "GENERIC_W3C",
    "GENERIC_W3C_SYSLOG",
    "IBOSS",
    "I_FILTER",
    "I_FILTER_SYSLOG",
    "JUNIPER_SRX_SD_SYSLOG",
    "JUNIPER_SRX_SYSLOG",
    "JUNIPER_SRX_WELF_SYSLOG",
    "JUNIPER_SSG_SYSLOG",
    "MACHINE_ZONE_MERAKI",
    "MACHINE_ZONE_MERAKI_SYSLOG",
    "MCAFEE_SWG",
    "MCAFEE_SWG_SYSLOG",
    "MENLO_SECURITY_CEF",
    "MICROSOFT_ISA_W3C",
    "OPEN_SYSTEMS_SECURE_WEB_GATEWAY",
    "PALO_ALTO",
    "PALO_ALTO_LEEF",
    "PALO_ALTO_LEEF_SYSLOG",
    "PALO_ALTO_SYSLOG",
    "SONICWALL_SYSLOG",
    "SOPHOS_CYBEROAM_SYSLOG",
    "SOPHOS_SG",
    "SOPHOS_SG_SYSLOG",
    "SOPHOS_XG",
    "SOPHOS_XG_SYSLOG",
    "SQUID",
    "SQUID_NATIVE",
    "SQUID_NATIVE_SYSLOG",
    "STORMSHIELD_SYSLOG",
    "WANDERA_SYSLOG",
    "WATCHGUARD_XTM_SYSLOG",
    "WEBSENSE_SIEM_CEF_SYSLOG",
    "WEBSENSE_V7_5",
    "ZSCALER",
    "ZSCALER_CEF_SYSLOG",
    "ZSCALER_QRADAR_SYSLOG",
    "ZSCALER_SYSLOG",
];

/// A log format lc can recognize. Several source type names can share one (the same format
/// over syslog or in files); some names have none yet ([`Family::of`] is `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    PaloAlto,
    PaloAltoLeef,
    CheckPoint,
    CheckPointCef,
    FortiGate,
    CiscoAsa,
    CiscoFtd,
    Meraki,
    Umbrella,
    SquidNative,
    SquidCommon,
    BlueCoat,
    Zscaler,
    ZscalerCef,
    ZscalerLeef,
    JuniperSrx,
    JuniperSrxSd,
    SonicWall,
    SophosXg,
    SophosSg,
    ForcepointCef,
    ForcepointLeef,
    BarracudaWsg,
    BarracudaNgfw,
    WatchGuard,
    PfSense,
    GenericCef,
    GenericLeef,
    W3c,
}

/// One row of the table: a family, how people call it, the type names it covers, what its
/// lines look like (`lc check --list`) and its recognizer.
pub struct Kind {
    pub family: Family,
    pub name: &'static str,
    /// The `FORMATS` names whose parser reads this format; may be empty (Cloud Discovery has no
    /// collector source type for it, but naming it is still the best answer to "what is this?").
    pub types: &'static [&'static str],
    pub hint: &'static str,
    recognize: fn(&Line) -> bool,
}

/// Every family, in declaration order, which is the order [`guess`] tries them: vendor formats
/// before the generic ones that also read them (a Forcepoint CEF line is Forcepoint's before it
/// is generic CEF).
pub const KINDS: &[Kind] = &[
    Kind {
        family: Family::PaloAlto,
        name: "Palo Alto",
        types: &["PALO_ALTO", "PALO_ALTO_SYSLOG"],
        hint: "PAN-OS CSV: 1,2019/04/09 16:03:37,SERIAL,TRAFFIC|THREAT|SYSTEM,...",
        recognize: r::paloalto,
    },
    Kind {
        family: Family::PaloAltoLeef,
        name: "Palo Alto LEEF",
        types: &["PALO_ALTO_LEEF", "PALO_ALTO_LEEF_SYSLOG"],
        hint: "LEEF:1.0|Palo Alto Networks|PAN-OS Syslog Integration|...",
        recognize: r::paloalto_leef,
    },
    Kind {
        family: Family::CheckPoint,
        name: "Check Point",
        types: &["CHECKPOINT"],
        hint: "Log Exporter: CheckPoint ... [action:\"Accept\"; ifdir:...; loguid:...] or key=value|",
        recognize: r::checkpoint,
    },
    Kind {
        family: Family::CheckPointCef,
        name: "Check Point CEF",
        types: &["CHECKPOINT_CEF_SYSLOG"],
        hint: "CEF:0|Check Point|VPN-1 & FireWall-1|...",
        recognize: r::checkpoint_cef,
    },
    Kind {
        family: Family::FortiGate,
        name: "FortiGate",
        types: &["FORTIGATE", "FORTIGATE_SYSLOG", "FORTIOS_SYSLOG"],
        hint: "date=2019-04-09 time=16:03:37 devname=... devid=... logid=... type=traffic ...",
        recognize: r::fortigate,
    },
    Kind {
        family: Family::CiscoAsa,
        name: "Cisco ASA",
        types: &["CISCO_ASA", "CISCO_ASA_SYSLOG"],
        hint: "%ASA-6-302013: Built outbound TCP connection ...",
        recognize: r::cisco_asa,
    },
    Kind {
        family: Family::CiscoFtd,
        name: "Cisco FTD / Firepower",
        types: &["CISCO_FIREPOWER_V6_SYSLOG"],
        hint: "%FTD-1-430003: ... AccessControlRuleAction: Allow, SrcIP: ...",
        recognize: r::cisco_ftd,
    },
    Kind {
        family: Family::Meraki,
        name: "Cisco Meraki",
        types: &["MACHINE_ZONE_MERAKI", "MACHINE_ZONE_MERAKI_SYSLOG"],
        hint: "1 1554825817.123456789 MX84 flows|urls|firewall src=... dst=...",
        recognize: r::meraki,
    },
    Kind {
        family: Family::Umbrella,
        name: "Cisco Umbrella",
        types: &[],
        hint: "\"2019-04-09 16:03:37\",\"identity\",...,\"Allowed\",\"1 (A)\",\"NOERROR\",...",
        recognize: r::umbrella,
    },
    Kind {
        family: Family::SquidNative,
        name: "Squid (native)",
        types: &["SQUID_NATIVE", "SQUID_NATIVE_SYSLOG"],
        hint: "1554825817.123    245 10.0.0.21 TCP_MISS/200 5321 GET http://... - HIER_DIRECT/...",
        recognize: r::squid_native,
    },
    Kind {
        family: Family::SquidCommon,
        name: "Squid (common)",
        types: &["SQUID"],
        hint: "10.0.0.21 - alice [09/Apr/2019:16:03:37 +0000] \"GET http://... HTTP/1.1\" 200 5321 TCP_MISS:HIER_DIRECT",
        recognize: r::squid_common,
    },
    Kind {
        family: Family::BlueCoat,
        name: "Blue Coat ProxySG",
        types: &["BLUECOAT", "BLUECOAT_SYSLOG"],
        hint: "2019-04-09 16:03:37 127 10.0.0.31 200 TCP_NC_MISS ... OBSERVED|PROXIED ...",
        recognize: r::bluecoat,
    },
    Kind {
        family: Family::Zscaler,
        name: "Zscaler NSS",
        types: &["ZSCALER", "ZSCALER_SYSLOG"],
        hint: "\"Tue Apr  9 16:03:37 2019\",\"user@corp\",\"HTTP\",... or TAB-separated urlcategory=... ClientIP=...",
        recognize: r::zscaler,
    },
    Kind {
        family: Family::ZscalerCef,
        name: "Zscaler CEF",
        types: &["ZSCALER_CEF_SYSLOG"],
        hint: "CEF:0|Zscaler|NSSWeblog|...",
        recognize: r::zscaler_cef,
    },
    Kind {
        family: Family::ZscalerLeef,
        name: "Zscaler QRadar LEEF",
        types: &["ZSCALER_QRADAR_SYSLOG"],
        hint: "LEEF:1.0|Zscaler|NSS|...",
        recognize: r::zscaler_leef,
    },
    Kind {
        family: Family::JuniperSrx,
        name: "Juniper SRX",
        types: &["JUNIPER_SRX_SYSLOG"],
        hint: "RT_FLOW: RT_FLOW_SESSION_CREATE: session created 10.3.3.3/51234->...",
        recognize: r::srx,
    },
    Kind {
        family: Family::JuniperSrxSd,
        name: "Juniper SRX structured",
        types: &["JUNIPER_SRX_SD_SYSLOG"],
        hint: "RT_FLOW - RT_FLOW_SESSION_CREATE [junos@2636.1.1.1.2.129 source-address=...]",
        recognize: r::srx_sd,
    },
    Kind {
        family: Family::SonicWall,
        name: "SonicWall",
        types: &["SONICWALL_SYSLOG"],
        hint: "id=firewall sn=0017C5123456 time=\"...\" fw=... pri=6 c=262144 m=98 ...",
        recognize: r::sonicwall,
    },
    Kind {
        family: Family::SophosXg,
        name: "Sophos XG",
        types: &["SOPHOS_XG", "SOPHOS_XG_SYSLOG"],
        hint: "device=\"SFW\" date=... log_id=010101600001 log_type=\"Firewall\" ...",
        recognize: r::sophos_xg,
    },
    Kind {
        family: Family::SophosSg,
        name: "Sophos SG / UTM",
        types: &["SOPHOS_SG", "SOPHOS_SG_SYSLOG"],
        hint: "httpproxy[1234]: id=\"0001\" severity=\"info\" sys=\"SecureWeb\" sub=\"http\" ...",
        recognize: r::sophos_sg,
    },
    Kind {
        family: Family::ForcepointCef,
        name: "Forcepoint / Websense CEF",
        types: &["WEBSENSE_SIEM_CEF_SYSLOG"],
        hint: "CEF:0|Forcepoint|Security|8.5|194|Transaction permitted|...",
        recognize: r::forcepoint_cef,
    },
    Kind {
        family: Family::ForcepointLeef,
        name: "Forcepoint LEEF",
        types: &["FORCEPOINT_LEEF_SYSLOG"],
        hint: "LEEF:1.0|Forcepoint|Security|8.5|transaction:permitted|...",
        recognize: r::forcepoint_leef,
    },
    Kind {
        family: Family::BarracudaWsg,
        name: "Barracuda Web Security Gateway",
        types: &["BARRACUDA", "BARRACUDA_SYSLOG"],
        hint: "1554825817 1 10.7.7.7 10.7.7.7 text/html 10.7.7.1 http://... 5120 BYF ALLOWED CLEAN ...",
        recognize: r::barracuda_wsg,
    },
    Kind {
        family: Family::BarracudaNgfw,
        name: "Barracuda CloudGen Firewall",
        types: &["BARRACUDA_NEXT_GEN_FW"],
        hint: "box_Firewall_Activity: Info ... Allow: type=FWD|proto=TCP|srcIF=...|srcIP=...",
        recognize: r::barracuda_ngfw,
    },
    Kind {
        family: Family::WatchGuard,
        name: "WatchGuard",
        types: &["WATCHGUARD_XTM_SYSLOG"],
        hint: "firewall: msg_id=\"3000-0148\" Allow 1-Trusted 0-External ...",
        recognize: r::watchguard,
    },
    Kind {
        family: Family::PfSense,
        name: "pfSense",
        types: &[],
        hint: "filterlog[123]: 5,,,1000000103,igb1,match,block,in,4,...",
        recognize: r::pfsense,
    },
    Kind {
        family: Family::GenericCef,
        name: "CEF",
        types: &["GENERIC_CEF", "GENERIC_CEF_SYSLOG"],
        hint: "CEF:0|Vendor|Product|Version|ID|Name|Severity|src=... dst=...",
        recognize: r::cef,
    },
    Kind {
        family: Family::GenericLeef,
        name: "LEEF",
        types: &["GENERIC_LEEF", "GENERIC_LEEF_SYSLOG"],
        hint: "LEEF:1.0|Vendor|Product|Version|EventID|src=...<TAB>dst=...",
        recognize: r::leef,
    },
    Kind {
        family: Family::W3c,
        name: "W3C extended (IIS)",
        types: &["GENERIC_W3C", "GENERIC_W3C_SYSLOG"],
        hint: "#Fields: date time ... then 2019-04-09 16:03:37 10.1.1.5 GET /index.html ...",
        recognize: r::w3c,
    },
];

/// Generic formats whose parsers read a vendor's flavour of them too: `(generic, vendor, why)`.
/// A vendor line matches both recognizers, and a source configured with the generic type that
/// receives the vendor's lines is not a mismatch. Type names that cannot be told apart at all
/// share one family instead (`FORTIGATE`, `FORTIGATE_SYSLOG`, `FORTIOS_SYSLOG`): see
/// [`ambiguous_with`]. Any other pair is kept apart by the recognizers, and the corpus tests
/// hold them to it.
pub const COVERS: &[(Family, Family, &str)] = &[
    (
        Family::GenericCef,
        Family::CheckPointCef,
        "generic CEF reads every CEF line",
    ),
    (
        Family::GenericCef,
        Family::ForcepointCef,
        "generic CEF reads every CEF line",
    ),
    (
        Family::GenericCef,
        Family::ZscalerCef,
        "generic CEF reads every CEF line",
    ),
    (
        Family::GenericLeef,
        Family::PaloAltoLeef,
        "generic LEEF reads every LEEF line",
    ),
    (
        Family::GenericLeef,
        Family::ForcepointLeef,
        "generic LEEF reads every LEEF line",
    ),
    (
        Family::GenericLeef,
        Family::ZscalerLeef,
        "generic LEEF reads every LEEF line",
    ),
    (
        Family::W3c,
        Family::BlueCoat,
        "ProxySG's access log is W3C extended (ELFF)",
    ),
];

/// Why `a` and `b` overlap (one covers the other, in either order); `None` if they are told
/// apart.
pub fn overlap(a: Family, b: Family) -> Option<&'static str> {
    COVERS
        .iter()
        .find(|(x, y, _)| (*x, *y) == (a, b) || (*x, *y) == (b, a))
        .map(|o| o.2)
}

/// The other type names whose lines cannot be told apart from `ty`'s (the same format,
/// usually one as files and one over syslog).
pub fn ambiguous_with(ty: &str) -> impl Iterator<Item = &'static str> + '_ {
    Family::of(ty)
        .map(|f| f.kind().types)
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(move |t| *t != ty)
}

impl Family {
    /// The family a source type name expects; `None` for names lc has no recognizer for.
    pub fn of(ty: &str) -> Option<Family> {
        KINDS
            .iter()
            .find(|k| k.types.contains(&ty))
            .map(|k| k.family)
    }

    pub fn kind(self) -> &'static Kind {
        // KINDS lists the families in declaration order (a unit test checks it).
        &KINDS[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.kind().name
    }

    /// Whether the line is in this family's format (a generic family's format includes the
    /// vendor variants it covers: generic CEF accepts a Forcepoint's CEF).
    pub fn recognizes(self, line: &Line) -> bool {
        (self.kind().recognize)(line)
    }
}

/// The most specific family whose format the line is in, if any: the first recognizer in
/// [`KINDS`] that accepts it.
pub fn guess(line: &Line) -> Option<Family> {
    KINDS.iter().find(|k| (k.recognize)(line)).map(|k| k.family)
}

pub fn is_known(name: &str) -> bool {
    FORMATS.binary_search(&name).is_ok()
}

#[cfg(test)]
mod corpus;

#[cfg(test)]
mod tests {
    #[test]
    fn kinds_in_family_order_with_known_unique_types() {
        for (i, k) in super::KINDS.iter().enumerate() {
            assert_eq!(k.family as usize, i, "{:?}", k.family);
            for t in k.types {
                assert!(super::is_known(t), "{t}");
                assert_eq!(super::Family::of(t), Some(k.family), "{t}");
            }
        }
    }

    #[test]
    fn sorted_for_binary_search() {
        assert!(super::FORMATS.windows(2).all(|w| w[0] < w[1]));
        assert!(super::is_known("CISCO_ASA_SYSLOG"));
        assert!(!super::is_known("CISCO"));
    }
}

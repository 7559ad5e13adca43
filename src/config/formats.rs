//! The MDCA source type names accepted by `format =`: the `source` values the Cloud Discovery
//! upload API documents for `GET /api/v1/discovery/upload_url/`. Kept sorted for the error message.

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

pub fn is_known(name: &str) -> bool {
    FORMATS.binary_search(&name).is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sorted_for_binary_search() {
        assert!(super::FORMATS.windows(2).all(|w| w[0] < w[1]));
        assert!(super::is_known("CISCO_ASA_SYSLOG"));
        assert!(!super::is_known("CISCO"));
    }
}

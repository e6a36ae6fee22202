//! ISO 3166-1 alpha-2 country codes, the only usage locations the rules and the API accept.

use std::fmt;

/// The officially assigned ISO 3166-1 alpha-2 codes, sorted so that a code's position is its
/// dense index.
const CODES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Number of distinct countries; [`Country::index`] is below this.
pub const COUNTRY_COUNT: usize = CODES.len();

/// A validated ISO 3166-1 alpha-2 country code.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Country(u8);

impl Country {
    /// Accepts exactly two capital letters that form an assigned code.
    pub fn parse(code: &str) -> Option<Country> {
        CODES
            .binary_search(&code)
            .ok()
            .and_then(|i| u8::try_from(i).ok())
            .map(Country)
    }

    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    pub fn code(self) -> &'static str {
        CODES[self.index()]
    }

    pub fn all() -> impl Iterator<Item = Country> {
        (0..COUNTRY_COUNT).map(|i| Country(i as u8))
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Country({})", self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sorted_unique_and_two_capitals() {
        assert!(CODES.windows(2).all(|w| w[0] < w[1]));
        assert!(
            CODES
                .iter()
                .all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
        );
    }

    #[test]
    fn parse_accepts_assigned_codes_only() {
        for code in ["US", "CN", "GB", "DE", "ZW", "AD"] {
            assert_eq!(Country::parse(code).map(Country::code), Some(code));
        }
        for code in ["us", "UK", "XX", "USA", "", "U", "EU"] {
            assert_eq!(Country::parse(code), None, "{code}");
        }
    }

    #[test]
    fn every_country_round_trips_through_its_index() {
        for c in Country::all() {
            assert_eq!(Country::parse(c.code()), Some(c));
        }
    }
}

//! The guard against fighting a person: a field corrected [`CONTEST_LIMIT`] times within
//! [`CONTEST_WINDOW`] is someone's deliberate choice, so the operator stops correcting it and
//! reports `Contested` until the spec or the person gives in.

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::Correction;

pub const CONTEST_LIMIT: usize = 3;
pub const CONTEST_WINDOW: SignedDuration = SignedDuration::from_mins(30);

/// The corrections still inside the window at `now`.
pub fn recent(corrections: &[Correction], now: Timestamp) -> Vec<Correction> {
    let cutoff = now - CONTEST_WINDOW;
    corrections
        .iter()
        .filter(|c| c.at.0 > cutoff)
        .cloned()
        .collect()
}

/// Whether `field` has been corrected too often to correct it again.
pub fn contested(recent: &[Correction], field: &str) -> bool {
    recent.iter().filter(|c| c.field == field).count() >= CONTEST_LIMIT
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn at(minutes_ago: i64, now: Timestamp) -> Correction {
        Correction {
            field: "instanceName".into(),
            at: Time(now - SignedDuration::from_mins(minutes_ago)),
        }
    }

    #[test]
    fn only_corrections_inside_the_window_count() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let old = [at(40, now), at(35, now), at(31, now)];
        assert!(!contested(&recent(&old, now), "instanceName"));
        let fresh = [at(29, now), at(10, now), at(1, now)];
        assert!(contested(&recent(&fresh, now), "instanceName"));
        assert!(!contested(&recent(&fresh, now), "tags"));
        assert!(!contested(&recent(&fresh[1..], now), "instanceName"));
    }
}

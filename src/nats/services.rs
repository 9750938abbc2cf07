//! The DUPLICATE_SERVICE store in a JetStream key-value bucket (contract: shared by every
//! instance, survives restarts).
//!
//! An encounter's services are claimed **before** its validated outcome is published: a claim
//! is a compare-and-set against the entry as read for the judgement, so of two encounters of
//! one patient and day judged at once, the second to claim a code finds the entry changed and
//! is judged again (a DUPLICATE_SERVICE now), instead of both publishing a clean claim. An
//! outcome that then cannot be published, or that JetStream drops as a duplicate of an earlier
//! outcome, gives its claim back ([`ServiceStore::release`]).
//!
//! Two layouts, chosen once per bucket:
//! - **patient-day** (buckets created by this version, marked by the `layout` key): one entry
//!   per patient and date of service, holding `{code: first encounter_id}`. A visit costs one
//!   read and at most one compare-and-set write, whatever its number of lines.
//! - **per-service** (buckets an earlier version filled, no marker): one entry per patient,
//!   date and code, read and created line by line. Its keys are one-way hashes, so they cannot be
//!   regrouped by day; such a bucket keeps this layout (marked `per-service/1` once decided),
//!   and every instance reading it agrees. Instances of the earlier version know no marker:
//!   do not run them beside this version on a patient-day bucket, nor roll back to them.

use std::collections::BTreeMap;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;

use super::NatsError;
use crate::core::PriorService;
use crate::proto::v1 as pb;
use crate::wire;

/// The key marking a bucket's layout, and its values.
pub const LAYOUT_KEY: &str = "layout";
pub const PATIENT_DAY_LAYOUT: &str = "patient-day/1";
pub const PER_SERVICE_LAYOUT: &str = "per-service/1";

/// Concurrent writers to one patient-day entry retry their compare-and-set this many times.
const MAX_WRITE_ATTEMPTS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    PatientDay,
    PerService,
}

impl Layout {
    /// The value of the `layout` key that marks this layout.
    fn marker(self) -> &'static str {
        match self {
            Layout::PatientDay => PATIENT_DAY_LAYOUT,
            Layout::PerService => PER_SERVICE_LAYOUT,
        }
    }

    fn from_marker(value: &[u8]) -> Option<Layout> {
        [Layout::PatientDay, Layout::PerService]
            .into_iter()
            .find(|layout| layout.marker().as_bytes() == value)
    }
}

pub struct ServiceStore {
    kv: kv::Store,
    layout: Layout,
}

/// What a lookup found: the services already validated in other encounters, and what
/// recording this encounter will write (computed once, with the read).
pub struct Lookup {
    pub prior: Vec<PriorService>,
    record: Record,
}

enum Record {
    /// No patient, date or billed line: nothing to remember.
    Nothing,
    /// The per-service keys that were absent when read: the ones to create.
    PerService(Vec<String>),
    /// The patient-day entry as read, so that the compare-and-set starts from it.
    PatientDay(DayEntry),
}

/// What [`ServiceStore::claim`] found.
pub enum Claim {
    /// The encounter's services are recorded for it (or already were, by an earlier delivery
    /// of the same encounter).
    Claimed(Claimed),
    /// Another encounter claimed one of these services after the lookup: the judgement is out
    /// of date. Look up and judge again.
    Conflict,
}

/// What a claim wrote, so that [`ServiceStore::release`] can take back exactly that.
#[derive(Debug)]
pub struct Claimed {
    encounter_id: String,
    added: Added,
}

#[derive(Debug)]
enum Added {
    Nothing,
    /// Per-service keys created.
    PerService(Vec<String>),
    /// Codes added to a patient-day entry.
    PatientDay {
        key: String,
        codes: Vec<String>,
    },
}

impl Claimed {
    /// Whether the claim wrote anything (else the services were already this encounter's).
    pub fn added_anything(&self) -> bool {
        match &self.added {
            Added::Nothing => false,
            Added::PerService(keys) => !keys.is_empty(),
            Added::PatientDay { codes, .. } => !codes.is_empty(),
        }
    }
}

/// One patient-day entry as read.
struct DayEntry {
    key: String,
    /// `None`: no entry yet (or a deleted one), so the write is a create.
    revision: Option<u64>,
    /// Procedure code → the first encounter validated with it.
    services: BTreeMap<String, String>,
    /// The encounter's billed codes.
    codes: Vec<String>,
}

fn store_error(error: impl std::fmt::Display) -> NatsError {
    NatsError::Store(error.to_string())
}

impl ServiceStore {
    /// Binds to the bucket and decides its layout: the marker's; without one, patient-day for
    /// an empty bucket or one holding patient-day entries (a lost marker), else per-service (an
    /// earlier version's entries). The decision is written as the marker, so it sticks.
    pub async fn open(kv: kv::Store) -> Result<ServiceStore, NatsError> {
        let layout = match read_layout(&kv).await? {
            Some(layout) => layout,
            None => {
                let layout = unmarked_layout(&kv).await?;
                match kv.create(LAYOUT_KEY, Bytes::from(layout.marker())).await {
                    Ok(_) => layout,
                    // Another instance marked it first: take its word.
                    Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                        read_layout(&kv).await?.unwrap_or(layout)
                    }
                    Err(error) => return Err(store_error(error)),
                }
            }
        };
        Ok(ServiceStore { kv, layout })
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The services of this encounter another encounter was already validated for.
    pub async fn lookup(&self, encounter: &pb::Encounter) -> Result<Lookup, NatsError> {
        match self.layout {
            Layout::PerService => {
                let (mut prior, mut keys) = (Vec::new(), Vec::new());
                for (line_index, key) in wire::service_keys(encounter) {
                    match self.kv.get(&key).await.map_err(store_error)? {
                        Some(value) => prior.push(PriorService {
                            line_index,
                            other_encounter_id: String::from_utf8_lossy(&value).into_owned(),
                        }),
                        None => keys.push(key),
                    }
                }
                Ok(Lookup {
                    prior,
                    record: Record::PerService(keys),
                })
            }
            Layout::PatientDay => {
                let Some(billed) = wire::billed_services(encounter).filter(|b| !b.lines.is_empty())
                else {
                    return Ok(Lookup {
                        prior: Vec::new(),
                        record: Record::Nothing,
                    });
                };
                let (revision, services) = self.read_day(&billed.day_key).await?;
                let prior = billed
                    .lines
                    .iter()
                    .filter_map(|(line_index, code)| {
                        services.get(code).map(|other| PriorService {
                            line_index: *line_index,
                            other_encounter_id: other.clone(),
                        })
                    })
                    .collect();
                Ok(Lookup {
                    prior,
                    record: Record::PatientDay(DayEntry {
                        key: billed.day_key,
                        revision,
                        services,
                        codes: billed.lines.into_iter().map(|(_, code)| code).collect(),
                    }),
                })
            }
        }
    }

    /// Records a validated encounter's services before its outcome is published; the first
    /// encounter to claim a code keeps it. [`Claim::Conflict`] when another encounter claimed
    /// one of them since the lookup.
    pub async fn claim(&self, encounter_id: &str, lookup: Lookup) -> Result<Claim, NatsError> {
        let claimed = |added| {
            Claim::Claimed(Claimed {
                encounter_id: encounter_id.to_owned(),
                added,
            })
        };
        match lookup.record {
            Record::Nothing => Ok(claimed(Added::Nothing)),
            Record::PerService(keys) => {
                let mut created = Vec::with_capacity(keys.len());
                for key in keys {
                    let value = Bytes::copy_from_slice(encounter_id.as_bytes());
                    match self.kv.create(&key, value).await {
                        Ok(_) => created.push(key),
                        Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                            let holder = self.kv.get(&key).await.map_err(store_error)?;
                            if holder.as_deref() != Some(encounter_id.as_bytes()) {
                                self.release(Claimed {
                                    encounter_id: encounter_id.to_owned(),
                                    added: Added::PerService(created),
                                })
                                .await?;
                                return Ok(Claim::Conflict);
                            }
                        }
                        Err(error) => return Err(store_error(error)),
                    }
                }
                Ok(claimed(Added::PerService(created)))
            }
            Record::PatientDay(day) => self.claim_day(day, encounter_id).await,
        }
    }

    /// Compare-and-set on the patient-day entry. A writer that lost the race re-reads the
    /// entry: if the winner claimed other codes, it merges and writes again; if the winner
    /// claimed one of its codes, its judgement is out of date.
    async fn claim_day(&self, mut day: DayEntry, encounter_id: &str) -> Result<Claim, NatsError> {
        let mut codes = day.codes.clone();
        codes.sort();
        codes.dedup();
        // Who held each of this encounter's codes when it was judged.
        let judged_with: Vec<Option<String>> =
            codes.iter().map(|c| day.services.get(c).cloned()).collect();
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let added: Vec<String> = codes
                .iter()
                .filter(|code| !day.services.contains_key(*code))
                .cloned()
                .collect();
            if added.is_empty() {
                return Ok(Claim::Claimed(Claimed {
                    encounter_id: encounter_id.to_owned(),
                    added: Added::Nothing,
                }));
            }
            let mut services = day.services.clone();
            for code in &added {
                services.insert(code.clone(), encounter_id.to_owned());
            }
            let value = Bytes::from(serde_json::to_vec(&services).map_err(store_error)?);
            if self.write_day(&day.key, day.revision, value).await? {
                return Ok(Claim::Claimed(Claimed {
                    encounter_id: encounter_id.to_owned(),
                    added: Added::PatientDay {
                        key: day.key,
                        codes: added,
                    },
                }));
            }
            (day.revision, day.services) = self.read_day(&day.key).await?;
            let taken = codes.iter().zip(&judged_with).any(|(code, before)| {
                let now = day.services.get(code);
                now != before.as_ref() && now.is_some_and(|holder| holder != encounter_id)
            });
            if taken {
                return Ok(Claim::Conflict);
            }
        }
        Err(NatsError::Store(format!(
            "{MAX_WRITE_ATTEMPTS} conflicting writes to one patient-day entry"
        )))
    }

    /// Takes back what a claim wrote, where the encounter still holds it: its outcome was not
    /// published, or JetStream dropped it as a duplicate of an earlier outcome.
    pub async fn release(&self, claimed: Claimed) -> Result<(), NatsError> {
        let encounter_id = claimed.encounter_id.as_str();
        match claimed.added {
            Added::Nothing => Ok(()),
            Added::PerService(keys) => {
                for key in keys {
                    match self.kv.entry(&key).await.map_err(store_error)? {
                        Some(entry)
                            if entry.operation == kv::Operation::Put
                                && entry.value.as_ref() == encounter_id.as_bytes() =>
                        {
                            match self
                                .kv
                                .delete_expect_revision(&key, Some(entry.revision))
                                .await
                            {
                                Ok(()) => {}
                                // Written again since: no longer this claim's to take back.
                                Err(error)
                                    if error.kind() == kv::DeleteErrorKind::WrongLastRevision => {}
                                Err(error) => return Err(store_error(error)),
                            }
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
            Added::PatientDay { key, codes } => {
                for _ in 0..MAX_WRITE_ATTEMPTS {
                    let (revision, mut services) = self.read_day(&key).await?;
                    let before = services.len();
                    services
                        .retain(|code, holder| !(holder == encounter_id && codes.contains(code)));
                    if services.len() == before {
                        return Ok(());
                    }
                    let value = Bytes::from(serde_json::to_vec(&services).map_err(store_error)?);
                    if self.write_day(&key, revision, value).await? {
                        return Ok(());
                    }
                }
                Err(NatsError::Store(format!(
                    "{MAX_WRITE_ATTEMPTS} conflicting writes to one patient-day entry"
                )))
            }
        }
    }

    /// Writes a patient-day entry if it is still at `revision` (absent when `None`); false
    /// when another writer changed it first.
    async fn write_day(
        &self,
        key: &str,
        revision: Option<u64>,
        value: Bytes,
    ) -> Result<bool, NatsError> {
        match revision {
            None => match self.kv.create(key, value).await {
                Ok(_) => Ok(true),
                Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
                Err(error) => Err(store_error(error)),
            },
            Some(revision) => match self.kv.update(key, value, revision).await {
                Ok(_) => Ok(true),
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
                Err(error) => Err(store_error(error)),
            },
        }
    }

    async fn read_day(
        &self,
        key: &str,
    ) -> Result<(Option<u64>, BTreeMap<String, String>), NatsError> {
        match self.kv.entry(key).await.map_err(store_error)? {
            Some(entry) if entry.operation == kv::Operation::Put => {
                let services = serde_json::from_slice(&entry.value).map_err(|error| {
                    NatsError::Store(format!("a patient-day entry is not a code map: {error}"))
                })?;
                Ok((Some(entry.revision), services))
            }
            _ => Ok((None, BTreeMap::new())),
        }
    }
}

async fn unmarked_layout(kv: &kv::Store) -> Result<Layout, NatsError> {
    let status = kv.status().await.map_err(store_error)?;
    if status.values() == 0 {
        return Ok(Layout::PatientDay);
    }
    let mut day_entries = kv
        .stream
        .info_with_subjects(format!("{}day.>", kv.prefix))
        .await
        .map_err(store_error)?;
    match day_entries.next().await.transpose().map_err(store_error)? {
        Some(_) => Ok(Layout::PatientDay),
        None => Ok(Layout::PerService),
    }
}

async fn read_layout(kv: &kv::Store) -> Result<Option<Layout>, NatsError> {
    let Some(value) = kv.get(LAYOUT_KEY).await.map_err(store_error)? else {
        return Ok(None);
    };
    match Layout::from_marker(&value) {
        Some(layout) => Ok(Some(layout)),
        None => Err(NatsError::Store(format!(
            "the bucket's layout is `{}`, which this version does not know",
            String::from_utf8_lossy(&value)
        ))),
    }
}

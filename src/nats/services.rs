//! The DUPLICATE_SERVICE store in a JetStream key-value bucket (contract: shared by every
//! instance, survives restarts).
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
    /// The per-service keys to create.
    PerService(Vec<String>),
    /// The patient-day entry as read, so that the compare-and-set starts from it.
    PatientDay(DayEntry),
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
                    if let Some(value) = self.kv.get(&key).await.map_err(store_error)? {
                        prior.push(PriorService {
                            line_index,
                            other_encounter_id: String::from_utf8_lossy(&value).into_owned(),
                        });
                    }
                    keys.push(key);
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

    /// Records a validated encounter's services; the first encounter to claim a code keeps it.
    pub async fn remember(&self, encounter_id: &str, lookup: Lookup) -> Result<(), NatsError> {
        match lookup.record {
            Record::Nothing => Ok(()),
            Record::PerService(keys) => {
                for key in keys {
                    let value = Bytes::copy_from_slice(encounter_id.as_bytes());
                    match self.kv.create(&key, value).await {
                        Ok(_) => {}
                        Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {}
                        Err(error) => return Err(store_error(error)),
                    }
                }
                Ok(())
            }
            Record::PatientDay(day) => self.remember_day(day, encounter_id).await,
        }
    }

    /// Compare-and-set on the patient-day entry: a writer that lost the race re-reads the
    /// entry and merges again.
    async fn remember_day(&self, mut day: DayEntry, encounter_id: &str) -> Result<(), NatsError> {
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let mut services = day.services.clone();
            let mut added = false;
            for code in &day.codes {
                if !services.contains_key(code) {
                    services.insert(code.clone(), encounter_id.to_owned());
                    added = true;
                }
            }
            if !added {
                return Ok(());
            }
            let value = Bytes::from(serde_json::to_vec(&services).map_err(store_error)?);
            // Written, or an error; falling through means another writer won the race.
            match day.revision {
                None => match self.kv.create(&day.key, value).await {
                    Ok(_) => return Ok(()),
                    Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {}
                    Err(error) => return Err(store_error(error)),
                },
                Some(revision) => match self.kv.update(&day.key, value, revision).await {
                    Ok(_) => return Ok(()),
                    Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
                    Err(error) => return Err(store_error(error)),
                },
            }
            (day.revision, day.services) = self.read_day(&day.key).await?;
        }
        Err(NatsError::Store(format!(
            "{MAX_WRITE_ATTEMPTS} conflicting writes to one patient-day entry"
        )))
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

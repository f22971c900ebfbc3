//! `GET /v1/models`: the model names a team may use, in OpenAI's list format.

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<ModelEntry>,
}

#[derive(Debug, Serialize)]
pub struct ModelEntry {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: String,
}

impl ModelList {
    pub fn new(names: impl IntoIterator<Item = String>, created: u64) -> Self {
        let data = names
            .into_iter()
            .map(|id| ModelEntry {
                id,
                object: "model",
                created,
                owned_by: "switchyard".to_owned(),
            })
            .collect();
        Self {
            object: "list",
            data,
        }
    }
}

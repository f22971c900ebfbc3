//! Anthropic's server-sent events checked the way a strict client reads them: `event:` names
//! matching the JSON `type`, `message_start` first, blocks opened in index order and closed
//! before the next opens, deltas of the open block's kind, `message_delta` with the stop
//! reason and usage, `message_stop` last. Returns the message the events build.

use serde_json::{json, Map, Value};

/// The `(event name, JSON data)` pairs of an SSE body, in order.
pub fn sse_events(body: &str) -> Result<Vec<(String, Value)>, String> {
    let mut events = Vec::new();
    for block in body.replace("\r\n", "\n").split("\n\n") {
        let mut name = None;
        let mut data = Vec::new();
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                name = Some(value.trim().to_owned());
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.strip_prefix(' ').unwrap_or(value));
            }
        }
        if data.is_empty() && name.is_none() {
            continue;
        }
        let name = name.ok_or_else(|| format!("an event without an `event:` line: {block:?}"))?;
        let data = data.join("\n");
        let value: Value = serde_json::from_str(&data)
            .map_err(|e| format!("event {name}: data is not JSON ({e}): {data}"))?;
        events.push((name, value));
    }
    Ok(events)
}

/// A block being built from its start and deltas.
struct Open {
    index: u64,
    block: Value,
    json: String,
}

/// Checks a whole Anthropic stream and returns the message it builds (`content` with text,
/// thinking + signature, tool_use input parsed; `stop_reason`; `usage` from `message_start`
/// overwritten by `message_delta`'s figures). An `event: error` is an error naming its type.
pub fn check_stream(events: &[(String, Value)]) -> Result<Value, String> {
    let mut message: Option<Value> = None;
    let mut content: Vec<Value> = Vec::new();
    let mut open: Option<Open> = None;
    let mut stopped = false;
    let mut delta_seen = false;
    for (k, (name, data)) in events.iter().enumerate() {
        let at = format!("event {k} ({name})");
        if data["type"].as_str() != Some(name.as_str()) {
            return Err(format!(
                "{at}: JSON type {} differs from the event name",
                data["type"]
            ));
        }
        if stopped {
            return Err(format!("{at}: after message_stop"));
        }
        if name == "ping" {
            continue;
        }
        if name == "error" {
            return Err(format!(
                "{at}: the stream failed: {} {}",
                data["error"]["type"], data["error"]["message"]
            ));
        }
        let Some(msg) = message.as_mut() else {
            if name != "message_start" {
                return Err(format!("{at}: the first event must be message_start"));
            }
            let m = &data["message"];
            if m["content"] != json!([]) || !m["usage"].is_object() || m["role"] != "assistant" {
                return Err(format!(
                    "{at}: message_start needs content [], role assistant and usage: {m}"
                ));
            }
            if !m["stop_reason"].is_null() {
                return Err(format!("{at}: message_start has a stop_reason already"));
            }
            message = Some(m.clone());
            continue;
        };
        match name.as_str() {
            "content_block_start" => {
                if open.is_some() || delta_seen {
                    return Err(format!(
                        "{at}: a block opens while another is open or after message_delta"
                    ));
                }
                let index = data["index"].as_u64().ok_or(format!("{at}: no index"))?;
                if index != content.len() as u64 {
                    return Err(format!("{at}: index {index}, expected {}", content.len()));
                }
                let block = data["content_block"].clone();
                let ok = match block["type"].as_str() {
                    Some("text") => block["text"] == "",
                    Some("thinking") => block["thinking"] == "" && block["signature"].is_string(),
                    Some("tool_use") => {
                        block["id"].is_string()
                            && block["name"].is_string()
                            && block["input"] == json!({})
                    }
                    Some("redacted_thinking") => block["data"].is_string(),
                    _ => true,
                };
                if !ok {
                    return Err(format!("{at}: malformed start payload {block}"));
                }
                open = Some(Open {
                    index,
                    block,
                    json: String::new(),
                });
            }
            "content_block_delta" => {
                let Some(current) = open.as_mut() else {
                    return Err(format!("{at}: a delta with no open block"));
                };
                if data["index"].as_u64() != Some(current.index) {
                    return Err(format!(
                        "{at}: delta for index {}, open is {}",
                        data["index"], current.index
                    ));
                }
                let delta = &data["delta"];
                let kind = current.block["type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                match (delta["type"].as_str(), kind.as_str()) {
                    (Some("text_delta"), "text") => {
                        append(&mut current.block, "text", &delta["text"], &at)?
                    }
                    (Some("thinking_delta"), "thinking") => {
                        append(&mut current.block, "thinking", &delta["thinking"], &at)?
                    }
                    (Some("signature_delta"), "thinking") => {
                        current.block["signature"] = delta["signature"].clone();
                    }
                    (Some("input_json_delta"), "tool_use") => {
                        let part = delta["partial_json"]
                            .as_str()
                            .ok_or(format!("{at}: no partial_json"))?;
                        current.json.push_str(part);
                    }
                    (Some("citations_delta"), "text") => {}
                    (other, _) => return Err(format!("{at}: delta {other:?} in a {kind} block")),
                }
            }
            "content_block_stop" => {
                let Some(done) = open.take() else {
                    return Err(format!("{at}: stop with no open block"));
                };
                if data["index"].as_u64() != Some(done.index) {
                    return Err(format!(
                        "{at}: stop for index {}, open is {}",
                        data["index"], done.index
                    ));
                }
                let mut block = done.block;
                if block["type"] == "tool_use" && !done.json.is_empty() {
                    block["input"] = serde_json::from_str(&done.json).map_err(|e| {
                        format!("{at}: tool input is not JSON ({e}): {}", done.json)
                    })?;
                }
                if block["type"] == "thinking" && block["signature"] == "" {
                    return Err(format!(
                        "{at}: a thinking block closed without its signature"
                    ));
                }
                content.push(block);
            }
            "message_delta" => {
                if open.is_some() {
                    return Err(format!("{at}: message_delta while a block is open"));
                }
                let stop = &data["delta"]["stop_reason"];
                if !stop.is_string() {
                    return Err(format!("{at}: message_delta without a stop_reason: {data}"));
                }
                if !data["usage"]["output_tokens"].is_u64() {
                    return Err(format!(
                        "{at}: message_delta without usage.output_tokens: {data}"
                    ));
                }
                msg["stop_reason"] = stop.clone();
                msg["stop_sequence"] = data["delta"]["stop_sequence"].clone();
                if let (Some(usage), Some(update)) =
                    (msg["usage"].as_object_mut(), data["usage"].as_object())
                {
                    merge(usage, update);
                }
                delta_seen = true;
            }
            "message_stop" => {
                if !delta_seen {
                    return Err(format!("{at}: message_stop before any message_delta"));
                }
                stopped = true;
            }
            other => return Err(format!("{at}: unknown event {other}")),
        }
    }
    if !stopped {
        return Err(format!(
            "the stream ended without message_stop after {} events",
            events.len()
        ));
    }
    let mut message = message.ok_or("no message_start")?;
    message["content"] = Value::Array(content);
    Ok(message)
}

fn append(block: &mut Value, field: &str, more: &Value, at: &str) -> Result<(), String> {
    let more = more
        .as_str()
        .ok_or(format!("{at}: the delta's {field} is not a string"))?;
    let text = format!("{}{more}", block[field].as_str().unwrap_or_default());
    block[field] = Value::String(text);
    Ok(())
}

fn merge(usage: &mut Map<String, Value>, update: &Map<String, Value>) {
    for (key, value) in update {
        if !value.is_null() {
            usage.insert(key.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n\
event: ping\ndata: {\"type\": \"ping\"}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hm\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"sig\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"1}\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":9}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    #[test]
    fn a_well_formed_stream_builds_its_message() {
        let message = check_stream(&sse_events(GOOD).unwrap()).unwrap();
        assert_eq!(message["content"][0]["thinking"], "hm");
        assert_eq!(message["content"][0]["signature"], "sig");
        assert_eq!(message["content"][1]["input"], json!({"a": 1}));
        assert_eq!(message["stop_reason"], "tool_use");
        assert_eq!(
            message["usage"],
            json!({"input_tokens": 5, "output_tokens": 9})
        );
    }

    #[test]
    fn order_and_index_faults_are_named() {
        let events = sse_events(GOOD).unwrap();
        let without = |skip: usize| -> Vec<(String, Value)> {
            events
                .iter()
                .enumerate()
                .filter(|(k, _)| *k != skip)
                .map(|(_, e)| e.clone())
                .collect()
        };
        assert!(check_stream(&without(0))
            .unwrap_err()
            .contains("first event"));
        assert!(check_stream(&without(4))
            .unwrap_err()
            .contains("without its signature"));
        assert!(check_stream(&without(5))
            .unwrap_err()
            .contains("while another is open"));
        assert!(check_stream(&without(11))
            .unwrap_err()
            .contains("without message_stop"));
        let mut wrong_index = events.clone();
        wrong_index[6].1["index"] = json!(2);
        assert!(check_stream(&wrong_index)
            .unwrap_err()
            .contains("expected 1"));
        let mut renamed = events.clone();
        renamed[2].0 = "pong".to_owned();
        assert!(check_stream(&renamed).unwrap_err().contains("differs"));
        let error = sse_events("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"x\"}}\n\n").unwrap();
        let mut failed = events[..3].to_vec();
        failed.extend(error);
        assert!(check_stream(&failed)
            .unwrap_err()
            .contains("overloaded_error"));
    }

    #[test]
    fn an_event_without_its_name_is_refused() {
        assert!(sse_events("data: {\"type\":\"ping\"}\n\n").is_err());
    }
}

//! The fake STS (query protocol: a form-encoded `POST /`, XML answers): `AssumeRole`, signed
//! with SigV4 by a key the keyring trusts, and `AssumeRoleWithWebIdentity`, unsigned and
//! carrying the OIDC token.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::{IdentityState, Issued, RoleGrant};
use crate::bedrock_sim::sigv4::{self, Scope, SignatureError};
use crate::form::field;
use crate::identity_sim::KeyRefusal;
use crate::serve::lock;

const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

pub(super) async fn handle(
    State(sim): State<Arc<IdentityState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if sim.failing() {
        sim.refused();
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "STS is failing (simulated)",
        );
    }
    let form = String::from_utf8_lossy(&body).into_owned();
    let param = |name: &str| field(&form, name);
    let (Some(action), Some(role_arn), Some(session_name)) =
        (param("Action"), param("RoleArn"), param("RoleSessionName"))
    else {
        sim.refused();
        return error(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            "Action, RoleArn and RoleSessionName are required",
        );
    };
    let caller = match action.as_str() {
        "AssumeRole" => match verify(&sim, uri.path(), &headers, &body) {
            Ok(caller) => Some(caller),
            Err(refusal) => {
                sim.refused();
                return error(StatusCode::FORBIDDEN, refusal.error_type, &refusal.message);
            }
        },
        "AssumeRoleWithWebIdentity" => {
            if param("WebIdentityToken").as_deref() != Some(&sim.config.web_identity_token) {
                sim.refused();
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidIdentityToken",
                    "The web identity token that was passed could not be validated by AWS.",
                );
            }
            None
        }
        other => {
            sim.refused();
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                &format!("Could not find operation {other}"),
            );
        }
    };
    let issued = sim.issue(if caller.is_some() { "ROLE" } else { "WEB" });
    lock(&sim.stats).grants.push(RoleGrant {
        action: action.clone(),
        role_arn: role_arn.clone(),
        session_name: session_name.clone(),
        external_id: param("ExternalId"),
        caller,
        issued: issued.access_key_id.clone(),
    });
    answer(&action, &role_arn, &session_name, &issued)
}

/// The access key id of a valid SigV4 signature (service `sts`) by a trusted key.
fn verify(
    sim: &IdentityState,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, SignatureError> {
    let secret_of = |key: &str, token: Option<&str>| {
        sim.config
            .keyring
            .check(key, token, SystemTime::now())
            .map_err(|refusal| SignatureError {
                error_type: match refusal {
                    KeyRefusal::Expired => "ExpiredToken",
                    KeyRefusal::Unknown | KeyRefusal::WrongToken => "InvalidClientTokenId",
                },
                message: "The security token included in the request is invalid or expired."
                    .to_owned(),
            })
    };
    let scope = Scope {
        region: &sim.config.region,
        service: "sts",
    };
    sigv4::verify_by(&secret_of, scope, path, headers, body)
}

fn answer(action: &str, role_arn: &str, session_name: &str, issued: &Issued) -> Response {
    let role = role_arn.rsplit('/').next().unwrap_or("role");
    let subject = match action {
        "AssumeRoleWithWebIdentity" => "<SubjectFromWebIdentityToken>system:serviceaccount:default:switchyard</SubjectFromWebIdentityToken><Audience>sts.amazonaws.com</Audience><Provider>arn:aws:iam::123456789012:oidc-provider/sim</Provider>",
        _ => "",
    };
    let xml = format!(
        "<{action}Response xmlns=\"{NAMESPACE}\"><{action}Result>{subject}\
<AssumedRoleUser><AssumedRoleId>AROASIMULATOR:{session_name}</AssumedRoleId>\
<Arn>arn:aws:sts::123456789012:assumed-role/{role}/{session_name}</Arn></AssumedRoleUser>\
<Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
<SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>\
</{action}Result><ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId>\
</ResponseMetadata></{action}Response>",
        issued.access_key_id,
        issued.secret_access_key,
        issued.session_token,
        issued.expiration(),
    );
    ([("content-type", "text/xml")], xml).into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let kind = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let xml = format!(
        "<ErrorResponse xmlns=\"{NAMESPACE}\"><Error><Type>{kind}</Type><Code>{code}</Code>\
<Message>{message}</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId>\
</ErrorResponse>"
    );
    (status, [("content-type", "text/xml")], xml).into_response()
}

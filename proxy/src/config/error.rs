//! The one error type of configuration loading, and the position-carrying problem compile builds it from.

use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

/// Why `routes.yaml` could not become a policy. Never contains a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid policy; `line`/`column` are 1-based.
    #[error("{}", render_invalid(path, *line, *column, message))]
    Invalid {
        path: PathBuf,
        line: Option<u64>,
        column: Option<u64>,
        message: String,
    },
}

fn render_invalid(path: &Path, line: Option<u64>, column: Option<u64>, message: &str) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("{}:{line}:{column}: {message}", path.display()),
        (Some(line), None) => format!("{}:{line}: {message}", path.display()),
        _ => format!("{}: {message}", path.display()),
    }
}

/// A validation failure before the file name is attached: where in the YAML, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

impl Problem {
    /// A problem at a YAML location; serde-saphyr's `UNKNOWN` (line 0) becomes "no position".
    pub fn at(location: Location, message: impl Into<String>) -> Self {
        let known = location.line() > 0;
        Self {
            line: known.then(|| location.line()),
            column: (known && location.column() > 0).then(|| location.column()),
            message: message.into(),
        }
    }

    /// A problem at the position of a spanned value (where it is used, for aliases).
    pub fn spanned<T>(value: &Spanned<T>, message: impl Into<String>) -> Self {
        Self::at(value.referenced, message)
    }

    pub fn into_error(self, path: &Path) -> ConfigError {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line: self.line,
            column: self.column,
            message: self.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_file_line_column_message() {
        let err = ConfigError::Invalid {
            path: PathBuf::from("routes.yaml"),
            line: Some(12),
            column: Some(5),
            message: "boom".into(),
        };
        assert_eq!(err.to_string(), "routes.yaml:12:5: boom");
    }

    #[test]
    fn display_without_position_is_file_and_message() {
        let err = ConfigError::Invalid {
            path: PathBuf::from("conf/routes.yaml"),
            line: None,
            column: None,
            message: "boom".into(),
        };
        assert_eq!(err.to_string(), "conf/routes.yaml: boom");
    }

    #[test]
    fn unknown_location_means_no_position() {
        let problem = Problem::at(Location::UNKNOWN, "x");
        assert_eq!((problem.line, problem.column), (None, None));
    }
}

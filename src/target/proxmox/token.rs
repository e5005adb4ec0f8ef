//! The API token and the `Authorization` header made from it. The secret is
//! kept out of every `Debug`, `Display` and error.

use reqwest::header::HeaderValue;

use super::PveError;

/// `user@realm!tokenname` plus its secret.
#[derive(Clone)]
pub struct ApiToken {
    id: String,
    secret: String,
}

impl ApiToken {
    /// Checks the id's shape (`user@realm!tokenname`).
    pub fn new(id: &str, secret: String) -> Result<Self, PveError> {
        let valid = match id.split_once('!') {
            Some((user, name)) => {
                user.contains('@') && !name.is_empty() && !id.contains(['=', ' ', '\n'])
            }
            None => false,
        };
        if !valid {
            return Err(PveError::InvalidTokenId(id.to_string()));
        }
        Ok(Self {
            id: id.to_string(),
            secret,
        })
    }

    /// Reads the secret from the environment variable `var`.
    pub fn from_env(id: &str, var: &str) -> Result<Self, PveError> {
        let secret = std::env::var(var)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| PveError::MissingSecret(var.to_string()))?;
        Self::new(id, secret)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// `PVEAPIToken=USER@REALM!TOKENID=SECRET`, marked sensitive so that
    /// reqwest and hyper never print it.
    pub(crate) fn header(&self) -> Result<HeaderValue, PveError> {
        let text = format!("PVEAPIToken={}={}", self.id, self.secret);
        let mut value = HeaderValue::from_str(&text).map_err(|_| {
            PveError::InvalidTokenId(format!("{} (the secret has invalid characters)", self.id))
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_has_the_admin_guide_form_and_debug_hides_the_secret() {
        let t = ApiToken::new("oxbake@pve!ci", "0b5e-secret".into()).unwrap();
        let h = t.header().unwrap();
        assert_eq!(h.to_str().unwrap(), "PVEAPIToken=oxbake@pve!ci=0b5e-secret");
        assert!(h.is_sensitive());
        let dbg = format!("{t:?} {h:?}");
        assert!(!dbg.contains("0b5e-secret"), "{dbg}");
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in ["oxbake@pve", "oxbake!ci", "oxbake@pve!", "a@b!c=d"] {
            let e = ApiToken::new(bad, "s".into()).unwrap_err();
            assert!(matches!(e, PveError::InvalidTokenId(_)), "{bad}");
        }
    }
}

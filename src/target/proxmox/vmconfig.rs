//! The options oxbake sets on a guest, encoded for `POST …/config`.

use super::form::{Form, sshkeys_value};

/// A change to a guest's configuration; `None` leaves an option alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigChange {
    pub name: Option<String>,
    pub cores: Option<u32>,
    pub memory_mib: Option<u32>,
    /// A property string, e.g. `virtio=BC:24:11:…,bridge=vmbr0`.
    pub net0: Option<String>,
    /// Disk and CD-ROM options, e.g. `("ide2", "local:iso/x.iso,media=cdrom")`.
    pub drives: Vec<(String, String)>,
    pub agent: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub description: Option<String>,
    pub ciuser: Option<String>,
    /// OpenSSH public key lines.
    pub sshkeys: Option<Vec<String>>,
    /// e.g. `ip=10.0.0.5/24,gw=10.0.0.1` or `ip=dhcp`.
    pub ipconfig0: Option<String>,
    /// e.g. `user=local:snippets/web.yaml`.
    pub cicustom: Option<String>,
    /// Proxmox defaults to 1 (a package upgrade on first boot).
    pub ciupgrade: Option<bool>,
    /// Options to remove.
    pub delete: Vec<String>,
}

impl ConfigChange {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn to_form(&self) -> Form {
        let mut form = Form::new()
            .opt_text("name", self.name.clone())
            .opt_text("cores", self.cores.map(|c| c.to_string()))
            .opt_text("memory", self.memory_mib.map(|m| m.to_string()))
            .opt_text("net0", self.net0.clone());
        for (key, value) in &self.drives {
            form = form.text(key, value.clone());
        }
        if let Some(agent) = self.agent {
            form = form.flag("agent", agent);
        }
        form = form
            .opt_text("tags", self.tags.as_ref().map(|t| t.join(";")))
            .opt_text("description", self.description.clone())
            .opt_text("ciuser", self.ciuser.clone())
            .opt_text("sshkeys", self.sshkeys.as_deref().map(sshkeys_value))
            .opt_text("ipconfig0", self.ipconfig0.clone())
            .opt_text("cicustom", self.cicustom.clone());
        if let Some(up) = self.ciupgrade {
            form = form.flag("ciupgrade", up);
        }
        if !self.delete.is_empty() {
            form = form.text("delete", self.delete.join(","));
        }
        form
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_is_encoded_strictly() {
        let change = ConfigChange {
            name: Some("web-1".into()),
            cores: Some(2),
            memory_mib: Some(4096),
            net0: Some("virtio=BC:24:11:AA:BB:CC,bridge=vmbr0".into()),
            agent: Some(true),
            tags: Some(vec!["oxbake".into(), "role-web".into()]),
            ipconfig0: Some("ip=10.0.0.5/24,gw=10.0.0.1".into()),
            sshkeys: Some(vec!["ssh-ed25519 AAAA k".into()]),
            ciupgrade: Some(false),
            delete: vec!["ide0".into(), "unused0".into()],
            ..Default::default()
        };
        assert_eq!(
            change.to_form().encode(),
            "name=web-1&cores=2&memory=4096&net0=virtio%3DBC%3A24%3A11%3AAA%3ABB%3ACC%2Cbridge%3Dvmbr0\
             &agent=1&tags=oxbake%3Brole-web&sshkeys=ssh%252Ded25519%2520AAAA%2520k\
             &ipconfig0=ip%3D10.0.0.5%2F24%2Cgw%3D10.0.0.1&ciupgrade=0&delete=ide0%2Cunused0"
        );
    }
}

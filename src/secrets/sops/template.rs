//! sops-nix templates: every `<SOPS:<sha256 of a name>:PLACEHOLDER>` replaced by that
//! secret's value (sops-nix `modules/sops/templates/default.nix`).

use std::collections::BTreeMap;

use super::plan::{placeholder, PlannedSecret, PlannedTemplate};
use super::stage::Made;

/// Render every template: each secret's placeholder replaced by its value.
pub(super) fn make_templates(
    templates: &[PlannedTemplate],
    secrets: &[PlannedSecret],
    values: &[Made],
) -> Vec<Made> {
    templates
        .iter()
        .map(|t| {
            let text = t.text.clone()?;
            let by_placeholder: BTreeMap<String, &[u8]> = secrets
                .iter()
                .zip(values)
                .filter_map(|(s, v)| Some((placeholder(&s.attr), v.as_ref().ok()?.as_slice())))
                .collect();
            Ok(render(text.as_bytes(), &by_placeholder))
        })
        .collect()
}

/// Every `<SOPS:…:PLACEHOLDER>` in `text`: (start, end) byte offsets.
pub(super) fn find_placeholders(text: &[u8]) -> Vec<(usize, usize)> {
    const OPEN: &[u8] = b"<SOPS:";
    const CLOSE: &[u8] = b":PLACEHOLDER>";
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(at) = text[i..].windows(OPEN.len()).position(|w| w == OPEN) {
        let start = i + at;
        let inner = start + OPEN.len();
        let len = text[inner..]
            .iter()
            .position(|b| b"<>:\n".contains(b))
            .unwrap_or(text.len() - inner);
        if len > 0 && text[inner + len..].starts_with(CLOSE) {
            let end = inner + len + CLOSE.len();
            found.push((start, end));
            i = end;
        } else {
            i = start + 1;
        }
    }
    found
}

/// `text` with each placeholder replaced by its secret's value, in one pass over the
/// template: a value is never searched again, so a placeholder inside a secret's value stays
/// as it is (it must not pull another secret into a template that did not ask for it).
pub(super) fn render(text: &[u8], values: &BTreeMap<String, &[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in find_placeholders(text) {
        out.extend_from_slice(&text[last..start]);
        let ph = String::from_utf8_lossy(&text[start..end]);
        match values.get(ph.as_ref()) {
            Some(v) => out.extend_from_slice(v),
            None => out.extend_from_slice(&text[start..end]),
        }
        last = end;
    }
    out.extend_from_slice(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sops-nix `modules/sops/templates/default.nix`: `<SOPS:${builtins.hashString "sha256"
    /// name}:PLACEHOLDER>`; the hash written out (`printf db-password | sha256sum`).
    #[test]
    fn placeholders_as_sops_nix() {
        assert_eq!(
            placeholder("db-password"),
            "<SOPS:47facce23a4e378e2db6678d49886c2c01fb69ec0fba65258571f9c19c06eb7f:PLACEHOLDER>"
        );
        let (a, b) = (placeholder("a"), placeholder("b"));
        let values: BTreeMap<String, &[u8]> =
            [(a.clone(), b.as_bytes()), (b.clone(), &b"B"[..])].into();
        // a's value is b's placeholder: it is not expanded again.
        let t = format!("x{a}y{b}z<SOPS:{a}<SOPS:");
        assert_eq!(
            String::from_utf8(render(t.as_bytes(), &values)).unwrap(),
            format!("x{b}yBz<SOPS:{b}<SOPS:")
        );
    }
}

//! "Did you mean ...?" suggestions for misspelled names.

/// The candidate closest to `name`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_typos_not_strangers() {
        assert_eq!(super::did_you_mean("conten", ["content", "path", "mode"]), Some("content"));
        assert_eq!(super::did_you_mean("zzz", ["content", "path"]), None);
    }
}

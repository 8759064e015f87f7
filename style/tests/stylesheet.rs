//! Checks the committed stylesheet against the sources.

/// Classes that exist only as markers for other selectors and so have no
/// rule of their own.
const MARKER_CLASSES: [&str; 2] = ["group", "peer"];

#[test]
fn stylesheet_is_up_to_date() {
    let root = style::workspace_root();
    let expected = style::generate_for_workspace(&root).unwrap();
    let committed = std::fs::read_to_string(root.join(style::OUTPUT)).unwrap_or_default();
    assert!(
        committed == expected,
        "style/latch.css is stale; run `cargo run -p style` and commit the result"
    );
}

#[test]
fn every_used_class_has_a_rule() {
    let root = style::workspace_root();
    let css = std::fs::read_to_string(root.join(style::OUTPUT)).unwrap();
    let mut missing = Vec::new();
    let mut checked = 0;
    for (path, text) in style::read_sources(&root).unwrap() {
        for class in style::used_classes(&path, &text) {
            if MARKER_CLASSES.contains(&class.as_str()) {
                continue;
            }
            checked += 1;
            let selector = style::css_selector(&class);
            let has_rule = css
                .match_indices(&selector)
                .any(|(index, _)| css[index + selector.len()..].starts_with(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_'));
            if !has_rule {
                missing.push(format!("{class} (in {})", path.display()));
            }
        }
    }
    assert!(checked > 50, "only {checked} classes were found; the extractor is broken");
    assert!(missing.is_empty(), "classes without a CSS rule: {missing:?}");
}

#[test]
fn extractor_reads_closures_and_constants() {
    let source = r#"view! { <div class="flex gap-2" class=move || { if on { "bg-indigo-600 w-11" } else { "bg-slate-300" } }></div> }"#;
    let classes = style::used_classes(std::path::Path::new("x.rs"), source);
    assert_eq!(classes, vec!["bg-indigo-600", "bg-slate-300", "flex", "gap-2", "w-11"]);
    let constants = style::used_classes(std::path::Path::new("ds.rs"), "pub const CARD: &str = \"rounded-lg p-6\";");
    assert_eq!(constants, vec!["p-6", "rounded-lg"]);
}

#[test]
fn selector_escaping() {
    assert_eq!(style::css_selector("hover:bg-slate-50"), ".hover\\:bg-slate-50");
    assert_eq!(style::css_selector("w-1/2"), ".w-1\\/2");
}

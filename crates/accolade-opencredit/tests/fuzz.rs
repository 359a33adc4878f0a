//! Bounded fuzzing (proptest) of the two parsers that take hostile input: the rich-text
//! sanitizer and the image decoder. Neither may panic; the sanitizer's output always stays
//! within the whitelist and the maximum length; the decoder never returns an image larger than
//! its limits. `PROPTEST_CASES` raises the number of cases (CI runs the defaults below).

use accolade_opencredit::images::{self, ImageKind, Limits};
use accolade_opencredit::richtext;
use proptest::prelude::*;

/// Strings built from HTML-ish pieces, so the generator hits tags, attributes, quotes,
/// comments and entities far more often than uniformly random text would.
fn htmlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<".to_string()),
        Just(">".to_string()),
        Just("</".to_string()),
        Just("/>".to_string()),
        Just("=".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("&".to_string()),
        Just("&amp;".to_string()),
        Just("&#x3c;".to_string()),
        Just("<!--".to_string()),
        Just("-->".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        prop::sample::select(vec![
            "b",
            "i",
            "ul",
            "li",
            "p",
            "br",
            "a",
            "script",
            "img",
            "div",
            "svg",
            "style",
            "href",
            "onclick",
            "src",
            "javascript:",
            "https://x.org/",
            "mailto:a@b"
        ])
        .prop_map(str::to_string),
        "[a-zA-Z0-9 ]{0,6}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn sanitizer_output_stays_in_the_whitelist(input in htmlish(), max in 0usize..80) {
        match richtext::sanitize(&input, max) {
            Ok(out) => {
                prop_assert!(out.chars().count() <= max, "{} chars > {max}: {out:?}", out.chars().count());
                prop_assert!(richtext::check(&out).is_ok(), "stored markup outside the whitelist: {out:?}");
                // Stored output is stable: sanitising it again changes nothing.
                let again = richtext::sanitize(&out, max);
                prop_assert_eq!(again.as_deref(), Ok(out.as_str()));
                let text = richtext::strip(&out);
                prop_assert!(!richtext::contains_markup(&text), "stripped text holds markup: {text:?}");
            }
            Err(e) => {
                prop_assert!(!e.tags.is_empty() || !e.attributes.is_empty());
            }
        }
    }

    #[test]
    fn strip_and_check_never_panic(input in any::<String>()) {
        let _ = richtext::check(&input);
        let _ = richtext::strip(&input);
        let _ = richtext::contains_markup(&input);
    }
}

fn small_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([x as u8, y as u8, 7])
    }));
    images::to_png(&img)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    #[test]
    fn decoder_survives_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = images::decode(&bytes, Limits::default());
    }

    #[test]
    fn decoder_survives_mutated_images(
        w in 1u32..40, h in 1u32..40,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut data = small_png(w, h);
        for (at, byte) in flips {
            let i = at.index(data.len());
            data[i] = byte;
        }
        let keep = data.len() - cut.index(data.len() / 2 + 1);
        data.truncate(keep);
        let limits = Limits { max_bytes: 1 << 20, max_side: 64, max_pixels: 64 * 64 };
        if let Ok(img) = images::decode(&data, limits) {
            prop_assert!(img.width() <= 64 && img.height() <= 64);
            for r in images::render(&img, ImageKind::Avatar).into_iter().take(2) {
                prop_assert!(!r.png.is_empty());
            }
        }
    }
}

//! The badge image of a template that has none of its own: a medallion in a colour derived from
//! the template id, as SVG (with the badge's name) and as PNG (for baking). Drawn here rather
//! than fetched: serving or baking a badge never makes an outbound request.

use std::io::Cursor;

use sha2::{Digest, Sha256};

/// Side of the PNG, in pixels.
const PNG_SIDE: u32 = 256;

fn colour(template_id: &str) -> [u8; 3] {
    let hash = Sha256::digest(template_id.as_bytes());
    // Mid-dark tones, so white text stays readable.
    [40 + hash[0] % 120, 40 + hash[1] % 120, 40 + hash[2] % 120]
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG medallion with `name` written across it.
pub fn svg(template_id: &str, name: &str) -> String {
    let [r, g, b] = colour(template_id);
    let short: String = name.chars().take(24).collect();
    let label = if name.chars().count() > 24 {
        format!("{short}…")
    } else {
        short
    };
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256" role="img" aria-label="{aria}"><circle cx="128" cy="128" r="120" fill="#{r:02x}{g:02x}{b:02x}"/><circle cx="128" cy="128" r="104" fill="none" stroke="#ffffff" stroke-opacity="0.6" stroke-width="4"/><text x="128" y="136" font-family="sans-serif" font-size="16" fill="#ffffff" text-anchor="middle">{label}</text></svg>"##,
        aria = escape(name),
        label = escape(&label),
    )
}

/// The PNG medallion (no text: a PNG has no fonts to draw with here).
pub fn png(template_id: &str) -> Vec<u8> {
    let [r, g, b] = colour(template_id);
    let side = PNG_SIDE as f32;
    let centre = side / 2.0;
    let img = image::RgbaImage::from_fn(PNG_SIDE, PNG_SIDE, |x, y| {
        let dx = x as f32 + 0.5 - centre;
        let dy = y as f32 + 0.5 - centre;
        let d = (dx * dx + dy * dy).sqrt();
        if d > centre - 8.0 {
            image::Rgba([0, 0, 0, 0])
        } else if (centre - 26.0..centre - 22.0).contains(&d) {
            image::Rgba([235, 235, 235, 255])
        } else {
            image::Rgba([r, g, b, 255])
        }
    });
    let mut out = Cursor::new(Vec::new());
    #[allow(clippy::expect_used)] // encoding an in-memory image into memory
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("PNG encoding in memory");
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_what_they_say() {
        let svg = svg("t1", "A <b> & \"c\"");
        assert!(svg.starts_with("<svg") && svg.contains("A &lt;b&gt; &amp; &quot;c&quot;"));
        let png = png("t1");
        let decoded = image::load_from_memory(&png).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (256, 256));
        assert_ne!(colour("t1"), colour("t2"));
    }
}

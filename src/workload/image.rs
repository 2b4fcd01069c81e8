//! Synthetic images: SGLang's `image` dataset and vLLM's `random-mm`. Each request is a
//! random text prompt plus images sent as `data:` URLs, so both need a chat API.
//!
//! `image` (SGLang 0.5, `sample_image_requests`):
//! - text and output lengths follow SGLang's random rule, uniform on `[max(floor(L·r), 1), L]`
//!   with `L = --random-input-len` / `--random-output-len` (default 1024) and
//!   `r = --random-range-ratio`;
//! - `--image-count` images per request, or uniform on `1..=count` with
//!   `--random-image-count`;
//! - `--image-resolution`: `4k` (2160×3840), `1080p`, `720p`, `360p`, `HxW` (height first, as
//!   SGLang reads it), or `random:HxW-HxW` (each image's height and width drawn uniformly
//!   between the two corners);
//! - `--image-content random` (i.i.d. uniform RGB bytes) or `blank` (white);
//!   `--image-format jpeg` (quality 85, as SGLang saves it) or `png`.
//!
//! `random-mm` (vLLM 0.33, `RandomMultiModalDataset`):
//! - text exactly as `random` ([`crate::plan::random`]);
//! - `k` images per request, uniform on `[floor(n(1−r)), ceil(n(1+r))]` with
//!   `n = --random-mm-base-items-per-request`, `r = --random-mm-num-mm-items-range-ratio`,
//!   the top clamped to the image limit of `--random-mm-limit-mm-per-prompt`;
//! - each image's `(H, W, frames)` drawn from `--random-mm-bucket-config` (zero-probability
//!   buckets dropped, the rest renormalised); pixels i.i.d. uniform RGB, JPEG at PIL's default
//!   quality 75.
//!
//! `prompt_len` counts the text's tokens only: the vision tokens an image costs depend on the
//! model's processor, which only the server knows.
//!
//! Departures, on purpose: random draws come from our own seeded streams (an image depends only
//! on the seed and its request's index), not numpy's; text ids are the non-special ids fixed up
//! to their exact length; video buckets (frames > 1) are refused rather than encoded; a
//! zero-probability bucket is ignored even when its modality has no limit (vLLM refuses the
//! default config under `{"image": N}` for its zero-probability video bucket).

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::{anyhow, bail, ensure, Context};
use base64::Engine;
use rand::distributions::{Distribution, WeightedIndex};
use rand::{Rng, RngCore};

use super::gsp::{random_text, sglang_len};
use super::{Ctx, DatasetArgs, Sample};
use crate::backend::Api;
use crate::plan::build_parallel;
use crate::plan::random::{allowed_ids, RandomDataset};
use crate::plan::seeded::{self, Stream};
use crate::tokenizer::Tokenizer;

/// JPEG stores each side in 16 bits.
const MAX_SIDE: u32 = u16::MAX as u32;

/// vLLM's `DEFAULT_MM_ITEM_BUCKET_CONFIG`.
const DEFAULT_BUCKETS: &str = "{(256, 256, 1): 0.5, (720, 1280, 1): 0.5, (720, 1280, 16): 0.0}";
/// vLLM's `DEFAULT_LIMIT_MM_PER_PROMPT`.
const DEFAULT_LIMITS: &str = r#"{"image": 255, "video": 1}"#;

pub fn load(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    let name = args.dataset_name.as_str();
    ensure!(
        ctx.api == Api::Chat,
        "--dataset-name {name} sends images, which only the chat API carries: use --backend \
         openai-chat (or vllm-chat, sglang-oai-chat)"
    );
    match name {
        "random-mm" => load_random_mm(args, ctx, tok),
        _ => load_image(args, ctx, tok),
    }
}

/// Height and width in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Size {
    pub height: u32,
    pub width: u32,
}

impl Size {
    fn checked(height: u64, width: u64, what: &str) -> anyhow::Result<Size> {
        ensure!(
            height >= 1 && width >= 1,
            "{what}: {height}x{width} has an empty side"
        );
        ensure!(
            height <= MAX_SIDE as u64 && width <= MAX_SIDE as u64,
            "{what}: {height}x{width} is too large (at most {MAX_SIDE} pixels a side)"
        );
        Ok(Size {
            height: height as u32,
            width: width as u32,
        })
    }

    fn bytes(self) -> usize {
        self.height as usize * self.width as usize * 3
    }
}

/// `--image-resolution`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    Fixed(Size),
    /// Height and width each uniform between the corners' (inclusive).
    Range {
        low: Size,
        high: Size,
    },
}

impl Resolution {
    pub fn parse(text: &str) -> anyhow::Result<Resolution> {
        let what = format!("--image-resolution {text}");
        let size =
            |h: u32, w: u32| Ok(Resolution::Fixed(Size::checked(h.into(), w.into(), &what)?));
        let res = text.trim().to_ascii_lowercase();
        match res.as_str() {
            "4k" => return size(2160, 3840),
            "1080p" => return size(1080, 1920),
            "720p" => return size(720, 1280),
            "360p" => return size(360, 640),
            _ => {}
        }
        let hxw = |part: &str| -> anyhow::Result<Size> {
            let (h, w) = part
                .split_once('x')
                .ok_or_else(|| anyhow!("{what}: expected HEIGHTxWIDTH, got {part:?}"))?;
            let num = |s: &str| {
                s.trim().parse::<u64>().map_err(|_| {
                    anyhow!("{what}: {s:?} is not a whole number of pixels (HEIGHTxWIDTH)")
                })
            };
            Size::checked(num(h)?, num(w)?, &what)
        };
        if let Some(range) = res.strip_prefix("random:") {
            let (low, high) = range
                .split_once('-')
                .ok_or_else(|| anyhow!("{what}: expected random:HxW-HxW"))?;
            let (low, high) = (hxw(low)?, hxw(high)?);
            ensure!(
                low.height <= high.height && low.width <= high.width,
                "{what}: the first corner must not exceed the second"
            );
            return Ok(Resolution::Range { low, high });
        }
        if res.contains('x') {
            return Ok(Resolution::Fixed(hxw(&res)?));
        }
        bail!(
            "{what}: choose 4k, 1080p, 720p, 360p, HEIGHTxWIDTH (e.g. 1080x1920) or \
             random:HxW-HxW (e.g. random:360x640-1080x1920)"
        )
    }

    fn draw(self, rng: &mut impl Rng) -> Size {
        match self {
            Resolution::Fixed(size) => size,
            Resolution::Range { low, high } => Size {
                height: rng.gen_range(low.height..=high.height),
                width: rng.gen_range(low.width..=high.width),
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Jpeg { quality: u8 },
    Png,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// Every byte uniform on 0..=255.
    Random,
    /// White.
    Blank,
}

/// Makes images as `data:` URLs. Blank images of one size are all alike, so each is encoded
/// once and cloned.
pub struct ImageMaker {
    format: Format,
    content: Content,
    blank: Mutex<HashMap<Size, String>>,
}

impl ImageMaker {
    pub fn new(format: Format, content: Content) -> ImageMaker {
        ImageMaker {
            format,
            content,
            blank: Mutex::new(HashMap::new()),
        }
    }

    pub fn make(&self, size: Size, rng: &mut impl RngCore) -> anyhow::Result<String> {
        match self.content {
            Content::Random => {
                let mut pixels = vec![0u8; size.bytes()];
                rng.fill_bytes(&mut pixels);
                encode_data_url(&pixels, size, self.format)
            }
            Content::Blank => {
                if let Some(url) = self.cache().get(&size) {
                    return Ok(url.clone());
                }
                let url = encode_data_url(&vec![255u8; size.bytes()], size, self.format)?;
                self.cache().insert(size, url.clone());
                Ok(url)
            }
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Size, String>> {
        // A poisoned cache only means another builder panicked; the map itself is whole.
        self.blank.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// RGB pixels (row-major, 3 bytes each) as a base64 `data:` URL.
pub fn encode_data_url(pixels: &[u8], size: Size, format: Format) -> anyhow::Result<String> {
    let mut bytes = Vec::with_capacity(pixels.len() / 4);
    let mime = match format {
        Format::Jpeg { quality } => {
            let (w, h) = (size.width as u16, size.height as u16);
            jpeg_encoder::Encoder::new(&mut bytes, quality)
                .encode(pixels, w, h, jpeg_encoder::ColorType::Rgb)
                .with_context(|| format!("cannot encode a {w}x{h} JPEG"))?;
            "jpeg"
        }
        Format::Png => {
            let mut encoder = png::Encoder::new(&mut bytes, size.width, size.height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            // Random pixels do not compress; blank ones compress at any level.
            encoder.set_compression(png::Compression::Fast);
            let mut writer = encoder.write_header().context("cannot encode a PNG")?;
            writer
                .write_image_data(pixels)
                .context("cannot encode a PNG")?;
            writer.finish().context("cannot encode a PNG")?;
            "png"
        }
    };
    let prefix = format!("data:image/{mime};base64,");
    let mut url = String::with_capacity(prefix.len() + bytes.len().div_ceil(3) * 4);
    url.push_str(&prefix);
    base64::engine::general_purpose::STANDARD.encode_string(&bytes, &mut url);
    Ok(url)
}

/// SGLang's `image` dataset.
fn load_image(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    let resolution = Resolution::parse(&args.image_resolution)?;
    let count = args.image_count;
    ensure!(count >= 1, "--image-count must be at least 1");
    ensure!(count <= 1 << 16, "--image-count {count}: too many images");
    let format = match args.image_format.as_str() {
        "jpeg" | "jpg" => Format::Jpeg { quality: 85 },
        "png" => Format::Png,
        other => bail!("--image-format {other}: choose jpeg or png"),
    };
    let content = match args.image_content.as_str() {
        "random" => Content::Random,
        "blank" => Content::Blank,
        other => bail!("--image-content {other}: choose random or blank"),
    };
    let ratio = args.random_range_ratio;
    ensure!(
        (0.0..=1.0).contains(&ratio),
        "--random-range-ratio {ratio}: must be in [0, 1] for the image dataset (SGLang's \
         lengths, [max(floor(L·r), 1), L])"
    );
    let input_len = args.random_input_len();
    ensure!(
        input_len <= 1 << 24,
        "--random-input-len {input_len}: too many tokens"
    );
    let output_len = args.output_len.or(args.random_output_len).unwrap_or(1024);
    if let Resolution::Fixed(size) = resolution {
        warn_if_slow(size, count * ctx.num_prompts, content);
    }

    let allowed = allowed_ids(tok)?;
    let maker = ImageMaker::new(format, content);
    build_parallel(ctx.num_prompts, |i| {
        let mut rng = seeded::rng(ctx.seed, Stream::Sample, i as u64);
        let input_len = sglang_len(input_len, ratio, &mut rng);
        let output_len = sglang_len(output_len, ratio, &mut rng);
        let text = random_text(tok, &allowed, input_len, &mut rng)?;

        let mut rng = seeded::rng(ctx.seed, Stream::Image, i as u64);
        let n = if args.random_image_count {
            rng.gen_range(1..=count)
        } else {
            count
        };
        let images = (0..n)
            .map(|_| {
                let size = resolution.draw(&mut rng);
                maker.make(size, &mut rng)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let prompt_len = text.ids.len();
        Ok(Sample {
            images,
            token_ids: Some(text.ids),
            mismatch: text.mismatch,
            ..Sample::text(text.text, prompt_len, output_len)
        })
    })
}

fn warn_if_slow(size: Size, images: usize, content: Content) {
    // SGLang warns at the same point: 1080p or more, 100 images or more.
    let large = size.height as u64 * size.width as u64 >= 1920 * 1080;
    if content == Content::Random && large && images >= 100 {
        eprintln!(
            "image dataset: encoding {images} random {}x{} images takes a while (about 40 ms \
             of CPU per 1080p JPEG) and holds every one in memory until the run ends",
            size.height, size.width
        );
    }
}

/// One `--random-mm-bucket-config` entry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub size: Size,
    pub frames: u64,
    pub probability: f64,
}

/// vLLM's `random-mm`.
fn load_random_mm(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    let buckets = image_buckets(&parse_buckets(
        args.random_mm_bucket_config
            .as_deref()
            .unwrap_or(DEFAULT_BUCKETS),
    )?)?;
    let limits = parse_limits(
        args.random_mm_limit_mm_per_prompt
            .as_deref()
            .unwrap_or(DEFAULT_LIMITS),
    )?;
    let image_limit = *limits.get("image").ok_or_else(|| {
        anyhow!(
            "--random-mm-limit-mm-per-prompt has no \"image\" limit but the bucket config draws \
             images; add e.g. \"image\": 255"
        )
    })?;
    let items = item_range(
        args.random_mm_base_items_per_request,
        args.random_mm_num_mm_items_range_ratio,
        image_limit,
    )?;
    let weights = WeightedIndex::new(buckets.iter().map(|b| b.probability))
        .map_err(|e| anyhow!("--random-mm-bucket-config: cannot weight the buckets ({e})"))?;

    let text = RandomDataset::new(&super::random::vllm_spec(args, ctx.seed), tok)?;
    // vLLM saves PIL images as JPEG without a quality: PIL's default, 75.
    let maker = ImageMaker::new(Format::Jpeg { quality: 75 }, Content::Random);
    build_parallel(ctx.num_prompts, |i| {
        let p = text.prompt(i)?;
        let mut rng = seeded::rng(ctx.seed, Stream::Image, i as u64);
        let k = rng.gen_range(items.clone());
        let images = (0..k)
            .map(|_| {
                let bucket = &buckets[weights.sample(&mut rng)];
                maker.make(bucket.size, &mut rng)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Sample { images, ..p.into() })
    })
}

/// Images per request: `[floor(n(1−r)), min(limit, ceil(n(1+r)))]`.
pub fn item_range(
    base: usize,
    ratio: f64,
    limit: usize,
) -> anyhow::Result<std::ops::RangeInclusive<usize>> {
    ensure!(
        (0.0..=1.0).contains(&ratio),
        "--random-mm-num-mm-items-range-ratio {ratio}: must be in [0, 1]"
    );
    ensure!(
        base <= 1 << 16,
        "--random-mm-base-items-per-request {base}: too many images"
    );
    let n = base as f64;
    let low = (n * (1.0 - ratio)).floor() as usize;
    let high = ((n * (1.0 + ratio)).ceil() as usize).min(limit);
    ensure!(
        low <= high,
        "--random-mm-base-items-per-request {base} with range ratio {ratio} needs at least \
         {low} images per request, but --random-mm-limit-mm-per-prompt allows {limit}"
    );
    Ok(low..=high)
}

/// The buckets that can be drawn: zero-probability ones dropped; video refused.
fn image_buckets(buckets: &[Bucket]) -> anyhow::Result<Vec<Bucket>> {
    let mut kept = Vec::new();
    for b in buckets {
        let key = format!("({}, {}, {})", b.size.height, b.size.width, b.frames);
        ensure!(
            b.probability.is_finite() && b.probability >= 0.0,
            "--random-mm-bucket-config: bucket {key} has probability {}; probabilities must be \
             non-negative numbers",
            b.probability
        );
        ensure!(
            b.frames >= 1,
            "--random-mm-bucket-config: bucket {key} has 0 frames; use 1 for an image"
        );
        if b.probability == 0.0 {
            continue;
        }
        ensure!(
            b.frames == 1,
            "--random-mm-bucket-config: bucket {key} is a {}-frame video with probability {}: \
             video is not supported; give it probability 0 or use (H, W, 1) image buckets",
            b.frames,
            b.probability
        );
        kept.push(*b);
    }
    ensure!(
        !kept.is_empty(),
        "--random-mm-bucket-config: every bucket has probability 0; give at least one a \
         positive probability"
    );
    Ok(kept)
}

/// `--random-mm-limit-mm-per-prompt`: a JSON object of modality → count.
pub fn parse_limits(text: &str) -> anyhow::Result<HashMap<String, usize>> {
    let what = "--random-mm-limit-mm-per-prompt";
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| anyhow!("{what} {text}: not valid JSON ({e}); e.g. {{\"image\": 3}}"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| anyhow!("{what} {text}: expected a JSON object, e.g. {{\"image\": 3}}"))?;
    obj.iter()
        .map(|(k, v)| {
            let n = v.as_u64().ok_or_else(|| {
                anyhow!("{what}: \"{k}\" is {v}; limits must be non-negative integers")
            })?;
            Ok((k.clone(), n.min(usize::MAX as u64) as usize))
        })
        .collect()
}

/// `--random-mm-bucket-config`: vLLM reads a Python literal, `{(H, W, T): p, ...}`; JSON with
/// the tuples as string keys, `{"(H, W, T)": p}`, is read too.
pub fn parse_buckets(text: &str) -> anyhow::Result<Vec<Bucket>> {
    let mut p = LiteralParser {
        text,
        pos: 0,
        what: "--random-mm-bucket-config",
    };
    let buckets = p.dict()?;
    p.skip_ws();
    if p.pos != text.len() {
        return Err(p.error("unexpected text after the closing }"));
    }
    Ok(buckets)
}

/// Just enough of Python's literal syntax for a dict of int triples to numbers.
struct LiteralParser<'t> {
    text: &'t str,
    pos: usize,
    what: &'static str,
}

impl LiteralParser<'_> {
    fn error(&self, msg: &str) -> anyhow::Error {
        anyhow!(
            "{} {}: {msg} at character {}; expected e.g. {{(256, 256, 1): 0.5, (720, 1280, 1): \
             0.5}} or {{\"(256, 256, 1)\": 1.0}}",
            self.what,
            self.text,
            self.pos + 1
        )
    }

    fn skip_ws(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.text[self.pos..].chars().next()
    }

    fn expect(&mut self, c: char) -> anyhow::Result<()> {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    fn eat(&mut self, c: char) -> bool {
        let found = self.peek() == Some(c);
        if found {
            self.pos += c.len_utf8();
        }
        found
    }

    fn dict(&mut self) -> anyhow::Result<Vec<Bucket>> {
        self.expect('{')?;
        let mut out = Vec::new();
        while !self.eat('}') {
            let (height, width, frames) = self.key()?;
            self.expect(':')?;
            let probability = self.number()?;
            let size = Size::checked(height, width, self.what)?;
            out.push(Bucket {
                size,
                frames,
                probability,
            });
            if !self.eat(',') {
                self.expect('}')?;
                break;
            }
        }
        Ok(out)
    }

    fn key(&mut self) -> anyhow::Result<(u64, u64, u64)> {
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                self.pos += 1;
                let key = self.tuple()?;
                self.expect(q)?;
                Ok(key)
            }
            _ => self.tuple(),
        }
    }

    fn tuple(&mut self) -> anyhow::Result<(u64, u64, u64)> {
        self.expect('(')?;
        let h = self.integer()?;
        self.expect(',')?;
        let w = self.integer()?;
        self.expect(',')?;
        let t = self.integer()?;
        self.eat(',');
        self.expect(')')?;
        Ok((h, w, t))
    }

    fn token(&mut self, allowed: impl Fn(char) -> bool) -> &str {
        self.skip_ws();
        let rest = &self.text[self.pos..];
        let len = rest.find(|c: char| !allowed(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn integer(&mut self) -> anyhow::Result<u64> {
        let start = self.pos;
        let digits = self.token(|c| c.is_ascii_digit());
        digits.parse().map_err(|_| {
            self.pos = start;
            self.error("expected a non-negative integer (H, W and frames)")
        })
    }

    fn number(&mut self) -> anyhow::Result<f64> {
        let start = self.pos;
        let num = self.token(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
        num.parse().map_err(|_| {
            self.pos = start;
            self.error("expected a probability")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_parse_height_first() {
        let fixed = |h, w| {
            Resolution::Fixed(Size {
                height: h,
                width: w,
            })
        };
        assert_eq!(Resolution::parse("4k").unwrap(), fixed(2160, 3840));
        assert_eq!(Resolution::parse("1080p").unwrap(), fixed(1080, 1920));
        assert_eq!(Resolution::parse("720P").unwrap(), fixed(720, 1280));
        assert_eq!(Resolution::parse("360p").unwrap(), fixed(360, 640));
        assert_eq!(Resolution::parse("480x720").unwrap(), fixed(480, 720));
        assert_eq!(
            Resolution::parse("random:100x200-300x400").unwrap(),
            Resolution::Range {
                low: Size {
                    height: 100,
                    width: 200
                },
                high: Size {
                    height: 300,
                    width: 400
                }
            }
        );
        for bad in [
            "8k",
            "1080",
            "0x10",
            "10x",
            "axb",
            "1x2x3",
            "-5x10",
            "70000x10",
            "random:300x400-100x200",
            "random:100x200",
        ] {
            let e = Resolution::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--image-resolution"), "{bad}: {e}");
        }
    }

    #[test]
    fn random_resolution_covers_its_range() {
        let r = Resolution::parse("random:10x20-12x22").unwrap();
        let mut rng = seeded::rng(1, Stream::Image, 0);
        let sizes: Vec<Size> = (0..200).map(|_| r.draw(&mut rng)).collect();
        assert!(sizes
            .iter()
            .all(|s| (10..=12).contains(&s.height) && (20..=22).contains(&s.width)));
        assert!(sizes.iter().any(|s| s.height == 10) && sizes.iter().any(|s| s.height == 12));
    }

    #[test]
    fn buckets_parse_python_literals_and_json() {
        let b = parse_buckets(DEFAULT_BUCKETS).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(
            b[1],
            Bucket {
                size: Size {
                    height: 720,
                    width: 1280
                },
                frames: 1,
                probability: 0.5
            }
        );
        assert_eq!(b[2].frames, 16);
        let j = parse_buckets(r#"{"(64, 32, 1)": 1, '(8,8,1,)': 2e-1,}"#).unwrap();
        assert_eq!(j[0].size.width, 32);
        assert_eq!(j[1].probability, 0.2);
        assert!(parse_buckets("{}").unwrap().is_empty());
        for bad in [
            "",
            "{(1, 2): 0.5}",
            "{(1, 2, 1) 0.5}",
            "{(1, 2, 1): x}",
            "[(1,2,1)]",
            "{(1, 2, 1): 0.5} extra",
            "{\"(1, 2, 1): 0.5}",
            "{(0, 2, 1): 0.5}",
        ] {
            let e = parse_buckets(bad).unwrap_err().to_string();
            assert!(e.contains("--random-mm-bucket-config"), "{bad}: {e}");
        }
    }

    #[test]
    fn video_and_empty_bucket_configs_are_refused() {
        let e = image_buckets(&parse_buckets("{(720, 1280, 16): 0.1, (1, 1, 1): 1}").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("video is not supported"), "{e}");
        let kept = image_buckets(&parse_buckets(DEFAULT_BUCKETS).unwrap()).unwrap();
        assert_eq!(kept.len(), 2);
        for bad in ["{(1, 1, 1): 0}", "{(1, 1, 1): -1}", "{(1, 1, 0): 1}"] {
            assert!(
                image_buckets(&parse_buckets(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn item_range_follows_vllm() {
        assert_eq!(item_range(1, 0.0, 255).unwrap(), 1..=1);
        assert_eq!(item_range(4, 0.5, 255).unwrap(), 2..=6);
        assert_eq!(item_range(4, 0.5, 3).unwrap(), 2..=3);
        assert_eq!(item_range(3, 1.0, 255).unwrap(), 0..=6);
        assert!(item_range(4, 0.0, 3).is_err());
        assert!(item_range(1, 1.5, 3).is_err());
        assert!(parse_limits("{\"image\": -1}").is_err());
        assert!(parse_limits("[1]").is_err());
        assert!(parse_limits("{image: 1}").is_err());
        assert_eq!(parse_limits(DEFAULT_LIMITS).unwrap()["image"], 255);
    }

    #[test]
    fn encoded_images_carry_their_size() {
        let size = Size {
            height: 17,
            width: 33,
        };
        let pixels = vec![200u8; size.bytes()];
        for (format, magic) in [
            (Format::Jpeg { quality: 85 }, &b"\xff\xd8\xff"[..]),
            (Format::Png, &b"\x89PNG\r\n\x1a\n"[..]),
        ] {
            let url = encode_data_url(&pixels, size, format).unwrap();
            let (head, data) = url.split_once(',').unwrap();
            assert!(head.starts_with("data:image/") && head.ends_with(";base64"));
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap();
            assert!(bytes.starts_with(magic), "{head}");
        }
    }
}

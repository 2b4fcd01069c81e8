//! Request fields shared by the backends' request shapes. Type errors name the field: serde's
//! own messages only give a line and column.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::mock::completions::MAX_MODEL_LEN;

/// Output length when the request names none.
pub const DEFAULT_MAX_TOKENS: u64 = 16;

/// Visits a nullable scalar of type `T`, describing itself as its label.
pub struct Named<T>(pub &'static str, pub PhantomData<T>);

impl<'de> Visitor<'de> for Named<u64> {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

impl<'de> Visitor<'de> for Named<bool> {
    type Value = Option<bool>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Defines a `deserialize_with` function for a nullable field of type `$t` named in errors.
macro_rules! named_field {
    ($name:ident, $t:ty, $label:literal) => {
        pub fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$t>, D::Error> {
            d.deserialize_any(Named::<$t>($label, PhantomData))
        }
    };
}

named_field!(stream, bool, "`stream` as a boolean");
named_field!(ignore_eos, bool, "`ignore_eos` as a boolean");
named_field!(
    include_usage,
    bool,
    "`stream_options.include_usage` as a boolean"
);
named_field!(max_tokens, u64, "`max_tokens` as a positive integer");
named_field!(
    max_completion_tokens,
    u64,
    "`max_completion_tokens` as a positive integer"
);
named_field!(
    max_output_tokens,
    u64,
    "`max_output_tokens` as a positive integer"
);
named_field!(
    max_new_tokens,
    u64,
    "`max_new_tokens` as a positive integer"
);

/// The requested output length, `field`'s value or the default, checked for range.
pub fn output_len(field: &str, value: Option<u64>) -> Result<u32, String> {
    let n = value.unwrap_or(DEFAULT_MAX_TOKENS);
    if n == 0 || n > u64::from(MAX_MODEL_LEN) {
        return Err(format!(
            "{field} must be between 1 and {MAX_MODEL_LEN}, got {n}"
        ));
    }
    Ok(n as u32)
}

#[derive(Deserialize)]
pub struct StreamOptions {
    #[serde(default, deserialize_with = "include_usage")]
    pub include_usage: Option<bool>,
}

/// The text of a conversation (chat `messages`, Responses `input` items): every string
/// content and every part's `text`, joined by newlines. Only counted, and only when prompt
/// counting is on; otherwise merely checked for shape.
pub struct Conversation<'a>(pub Cow<'a, str>);

impl<'a> Conversation<'a> {
    fn push(&mut self, text: Cow<'a, str>) {
        if self.0.is_empty() {
            self.0 = text;
        } else {
            let joined = self.0.to_mut();
            joined.push('\n');
            joined.push_str(&text);
        }
    }
}

/// Deserialises `messages`: an array of objects whose `content` is a string, an array of
/// parts (objects, their `text` taken when a string) or null.
pub fn messages<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Conversation<'a>, D::Error> {
    d.deserialize_seq(Items {
        label: "`messages` as an array of message objects",
        string_ok: false,
        _p: PhantomData,
    })
}

/// Deserialises Responses `input`: a string, or an array of items shaped like messages.
pub fn input<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Conversation<'a>, D::Error> {
    d.deserialize_any(Items {
        label: "`input` as a string or an array of input items",
        string_ok: true,
        _p: PhantomData,
    })
}

struct Items<'a> {
    label: &'static str,
    string_ok: bool,
    _p: PhantomData<&'a ()>,
}

impl<'de: 'a, 'a> Visitor<'de> for Items<'a> {
    type Value = Conversation<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.label)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        if !self.string_ok {
            return Err(E::invalid_type(de::Unexpected::Str(v), &self));
        }
        Ok(Conversation(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if !self.string_ok {
            return Err(E::invalid_type(de::Unexpected::Str(v), &self));
        }
        Ok(Conversation(Cow::Owned(v.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut all = Conversation(Cow::Borrowed(""));
        let mut items = 0;
        while let Some(item) = seq.next_element::<Item<'a>>()? {
            items += 1;
            for text in item.0 {
                all.push(text);
            }
        }
        if items == 0 {
            return Err(de::Error::invalid_length(0, &self));
        }
        Ok(all)
    }
}

/// One message or input item: the texts of its `content`.
struct Item<'a>(Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Item<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ItemVisitor(PhantomData))
    }
}

struct ItemVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ItemVisitor<'a> {
    type Value = Item<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message object with `role` and `content`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut texts = Vec::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "content" {
                texts = map.next_value::<Content<'a>>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Item(texts))
    }
}

/// A message's `content`: a string, an array of parts, or null.
struct Content<'a>(Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ContentVisitor(PhantomData))
    }
}

struct ContentVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ContentVisitor<'a> {
    type Value = Content<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`content` as a string, an array of content parts or null")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Content(vec![Cow::Borrowed(v)]))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Content(vec![Cow::Owned(v.to_owned())]))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Content(Vec::new()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut texts = Vec::new();
        while let Some(part) = seq.next_element::<Part<'a>>()? {
            texts.extend(part.text);
        }
        Ok(Content(texts))
    }
}

/// A content part: `{"type":"text","text":"..."}`, an image part, ...: only `text` is kept.
#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, default, deserialize_with = "part_text")]
    text: Option<Cow<'a, str>>,
}

fn part_text<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    Option::<Cow<'a, str>>::deserialize(d)
        .map_err(|_| de::Error::custom("a content part's `text` must be a string"))
}

/// Visits a nullable string field, describing itself as its label.
pub struct StrField<'a>(pub &'static str, pub PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for StrField<'a> {
    type Value = Option<Cow<'a, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Defines a `deserialize_with` function for a nullable string field named in errors.
macro_rules! str_field {
    ($name:ident, $label:literal) => {
        pub fn $name<'de: 'a, 'a, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Option<std::borrow::Cow<'a, str>>, D::Error> {
            d.deserialize_any($crate::mock::formats::fields::StrField(
                $label,
                std::marker::PhantomData,
            ))
        }
    };
}
pub(crate) use str_field;

/// Visits a nullable prompt-shaped field (see `completions::prompt_named`).
pub struct PromptField<'a>(pub &'static str, pub PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for PromptField<'a> {
    type Value = Option<crate::mock::completions::Prompt<'a>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        crate::mock::completions::prompt_named(d, self.0).map(Some)
    }
}

/// Defines a `deserialize_with` function for a nullable prompt-shaped field.
macro_rules! prompt_field {
    ($name:ident, $label:literal) => {
        pub fn $name<'de: 'a, 'a, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Option<$crate::mock::completions::Prompt<'a>>, D::Error> {
            d.deserialize_option($crate::mock::formats::fields::PromptField(
                $label,
                std::marker::PhantomData,
            ))
        }
    };
}
pub(crate) use prompt_field;

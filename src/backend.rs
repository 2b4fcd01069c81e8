//! `--backend`: which wire format requests are sent in and streams are read as. The names are
//! those of `vllm bench serve` and `sglang.bench_serving`; aliases share one implementation.

use anyhow::bail;

/// The API a backend speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// OpenAI Completions (`/v1/completions`; Truss serves the same shape elsewhere).
    Completions,
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    Chat,
    /// OpenAI Responses (`/v1/responses`).
    Responses,
    /// SGLang's native `/generate`: cumulative text, cumulative token counts.
    SglangGenerate,
    /// TGI's `/generate_stream`.
    Tgi,
    /// Triton / TensorRT-LLM `/v2/models/ensemble/generate_stream`.
    Triton,
    /// DeepSpeed-MII `/mii/benchmark`: one JSON body, not streamed.
    Mii,
}

impl Api {
    /// Whether replies are event streams (else one JSON body).
    pub fn is_streamed(self) -> bool {
        self != Api::Mii
    }

    /// Whether `--disable-stream` can ask this API for one JSON body instead of a stream.
    pub fn can_disable_stream(self) -> bool {
        matches!(
            self,
            Api::Completions | Api::Chat | Api::Responses | Api::SglangGenerate
        )
    }
}

/// How replies come back: the API, and whether as a stream or one body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wire {
    pub api: Api,
    pub streamed: bool,
}

/// Every accepted `--backend` value, its API and the endpoint used when `--endpoint` is left
/// at its default.
const BACKENDS: &[(&str, Api, &str)] = &[
    ("vllm", Api::Completions, "/v1/completions"),
    ("openai", Api::Completions, "/v1/completions"),
    ("lmdeploy", Api::Completions, "/v1/completions"),
    ("scalellm", Api::Completions, "/v1/completions"),
    ("sglang-oai", Api::Completions, "/v1/completions"),
    ("llama.cpp", Api::Completions, "/v1/completions"),
    ("truss", Api::Completions, "/v1/models/model:predict"),
    ("openai-chat", Api::Chat, "/v1/chat/completions"),
    ("vllm-chat", Api::Chat, "/v1/chat/completions"),
    ("sglang-oai-chat", Api::Chat, "/v1/chat/completions"),
    ("lmdeploy-chat", Api::Chat, "/v1/chat/completions"),
    ("openai-responses", Api::Responses, "/v1/responses"),
    ("sglang", Api::SglangGenerate, "/generate"),
    ("sglang-native", Api::SglangGenerate, "/generate"),
    ("tgi", Api::Tgi, "/generate_stream"),
    (
        "tensorrt-llm",
        Api::Triton,
        "/v2/models/ensemble/generate_stream",
    ),
    ("trt", Api::Triton, "/v2/models/ensemble/generate_stream"),
    ("deepspeed-mii", Api::Mii, "/mii/benchmark"),
];

/// The default of `--endpoint` (vLLM's): replaced by the backend's own endpoint when left as is.
pub const DEFAULT_ENDPOINT: &str = "/v1/completions";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub name: String,
    pub api: Api,
    /// Request path: `--endpoint` when given, else the backend's own.
    pub endpoint: String,
}

impl Backend {
    pub fn resolve(name: &str, endpoint: &str) -> anyhow::Result<Backend> {
        let Some(&(_, api, own)) = BACKENDS.iter().find(|(n, _, _)| *n == name) else {
            if name == "gserver" {
                bail!(
                    "--backend gserver: SGLang lists it but does not implement it; \
                     use sglang (native /generate) or sglang-oai"
                );
            }
            if name == "deepspeed-mii" {
                bail!(
                    "--backend deepspeed-mii is not supported yet (its replies are not streamed)"
                );
            }
            let names: Vec<&str> = BACKENDS.iter().map(|(n, _, _)| *n).collect();
            bail!(
                "--backend {name}: unknown; choose one of {}",
                names.join(", ")
            );
        };
        let endpoint = if endpoint == DEFAULT_ENDPOINT {
            own
        } else {
            endpoint
        };
        if api == Api::Chat && !endpoint.ends_with("chat/completions") {
            // vLLM's own check: a chat body sent to the completions route fails every request.
            bail!("--backend {name} sends OpenAI Chat Completions requests; --endpoint must end with 'chat/completions', got {endpoint}");
        }
        if api == Api::Completions
            && (endpoint.ends_with("chat/completions") || endpoint.ends_with("/responses"))
        {
            bail!("--backend {name} sends OpenAI Completions requests; --endpoint {endpoint} expects another format (use e.g. --backend openai-chat)");
        }
        Ok(Backend {
            name: name.to_string(),
            api,
            endpoint: endpoint.to_string(),
        })
    }

    /// vLLM's "OpenAI-compatible" set: sampling flags are accepted and `ignore_eos` is forced
    /// for synthetic datasets.
    pub fn is_openai_compatible(&self) -> bool {
        matches!(self.api, Api::Completions | Api::Chat | Api::Responses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_share_an_api_and_pick_their_endpoint() {
        let b = Backend::resolve("vllm-chat", DEFAULT_ENDPOINT).unwrap();
        assert_eq!(
            (b.api, b.endpoint.as_str()),
            (Api::Chat, "/v1/chat/completions")
        );
        let b = Backend::resolve("sglang", DEFAULT_ENDPOINT).unwrap();
        assert_eq!(
            (b.api, b.endpoint.as_str()),
            (Api::SglangGenerate, "/generate")
        );
        let b = Backend::resolve("trt", DEFAULT_ENDPOINT).unwrap();
        assert_eq!(b.endpoint, "/v2/models/ensemble/generate_stream");
        let b = Backend::resolve("truss", DEFAULT_ENDPOINT).unwrap();
        assert_eq!(
            (b.api, b.endpoint.as_str()),
            (Api::Completions, "/v1/models/model:predict")
        );
        let b = Backend::resolve("openai", "/custom/v1/completions").unwrap();
        assert_eq!(b.endpoint, "/custom/v1/completions");
    }

    #[test]
    fn wrong_names_and_endpoints_are_clear_errors() {
        let e = Backend::resolve("gserver", DEFAULT_ENDPOINT)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not implement"), "{e}");
        let e = Backend::resolve("nope", DEFAULT_ENDPOINT)
            .unwrap_err()
            .to_string();
        assert!(e.contains("openai-chat"), "{e}");
        assert!(Backend::resolve("openai-chat", "/v1/completions/x").is_err());
        assert!(Backend::resolve("openai", "/v1/chat/completions").is_err());
    }
}

// One naming scheme for tensors above io/: llama.cpp's GGUF names (`token_embd.weight`,
// `blk.N.attn_q.weight`, ...). Hugging Face checkpoints are mapped to it here, in one place.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace loom {

// Maps a HF tensor name of the given HF model_type to its GGUF name; nullopt when the name has
// no GGUF counterpart we know (the caller keeps the HF name then, so nothing is lost).
std::optional<std::string> hf_to_gguf_tensor_name(std::string_view model_type,
                                                  std::string_view hf_name);

}  // namespace loom

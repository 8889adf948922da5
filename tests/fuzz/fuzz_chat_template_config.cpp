// libFuzzer target: a HF folder's chat template files as loom reads them at model load:
// tokenizer_config.json (the part before the first "\n#jinja#\n"), and when the separator is
// present, chat_template.jinja (the part after). Template selection (string, list of named
// templates, tool_use), special tokens, parsing and rendering, with and without tools, must end
// in text or a loom::Error.
#include <cstddef>
#include <cstdint>

#include "app/chat_templates.h"
#include "core/error.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const loom::fuzz::Parts parts = loom::fuzz::split(loom::fuzz::as_text(data, size), "\n#jinja#\n");
  std::optional<std::string> jinja;
  if (parts.has_second) jinja = std::string(parts.second);
  try {
    const auto templates =
        loom::app::ModelChatTemplates::from_hf_files("fuzz", std::string(parts.first), jinja);
    (void)templates.has_template();
    loom::jinja::RenderOptions options;
    options.now = 1700000000;
    options.limits.max_steps = 200'000;
    for (bool with_tools : {false, true}) {
      loom::jinja::ChatRequest request;
      request.messages = nlohmann::ordered_json::parse(
          R"([{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}])");
      request.add_generation_prompt = true;
      if (with_tools) {
        request.tools = nlohmann::ordered_json::parse(
            R"([{"type": "function", "function": {"name": "f", "parameters": {}}}])");
      }
      try {
        (void)templates.apply(request, options);
      } catch (const loom::Error& e) {
        loom::fuzz::check_error(e);
      }
    }
  } catch (const loom::Error& e) {
    loom::fuzz::check_error(e);
  }
  return 0;
}

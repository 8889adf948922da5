// libFuzzer target: OpenAI request bodies (the first byte picks /v1/chat/completions,
// /v1/completions or /v1/embeddings) into their parsed form, then rendered through a chat
// template as the server does. Parsing must end in a request or a loom::Error naming the field;
// depth, sizes and numbers stay bounded whatever the body holds.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "server/embeddings.h"
#include "server/openai_api.h"
#include "template/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view body = loom::fuzz::as_text(data + 1, size - 1);
  using loom::server::Endpoint;
  try {
    switch (data[0] % 3) {
      case 0: {
        loom::server::ApiRequest r = loom::server::parse_request(Endpoint::kChatCompletions, body);
        (void)loom::server::effective_max_tokens(r, 7, 4096);
        static const loom::jinja::ChatTemplate tmpl(
            "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% if m.tool_calls %}"
            "{{ m.tool_calls | tojson }}{% endif %}\n{% endfor %}{% if tools %}{{ tools | tojson }}"
            "{% endif %}{% if add_generation_prompt %}<|assistant|>{% endif %}",
            {{"bos_token", "<s>"}});
        loom::jinja::ChatRequest req;
        req.messages = r.messages;
        req.tools = r.tools;
        req.extra = r.template_kwargs;
        req.add_generation_prompt = r.add_generation_prompt;
        req.continue_final_message = r.continue_final_message;
        loom::jinja::RenderOptions options;
        options.limits.max_steps = 200'000;
        try {
          (void)tmpl.apply(req, options);
        } catch (const loom::Error& e) {
          loom::fuzz::check_error(e);
        }
        break;
      }
      case 1: {
        loom::server::ApiRequest r = loom::server::parse_request(Endpoint::kCompletions, body);
        (void)loom::server::effective_max_tokens(r, 3, 128);
        break;
      }
      default:
        (void)loom::server::parse_embeddings_request(body);
        break;
    }
  } catch (const loom::Error& e) {
    loom::fuzz::check_error(e);
  }
  return 0;
}

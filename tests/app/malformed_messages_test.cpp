// Issue 12: every loader of untrusted input, fed hundreds of malformed versions of a valid file
// (truncated, bytes overwritten, invalid UTF-8 and control bytes inserted), either succeeds or
// throws loom::Error — never another exception — and the message is printable UTF-8 that
// names the file (or template) it is about. Deterministic: a fixed seed picks the mutations.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>

#include "app/chat_templates.h"
#include "app/loaded_model.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "io/gguf.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "scratch_dir.h"
#include "template/jinja.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

namespace loom {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void write(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

fs::path dir() {
  return loom::testing::scratch_dir("loom-malformed");
}

bool printable_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) return false;
    size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

// The malformed variants of `seed`: truncations, overwritten bytes, inserted hostile bytes.
std::vector<std::string> mutations(const std::string& seed, int count, uint32_t rng_seed) {
  std::mt19937 rng(rng_seed);
  std::vector<std::string> out;
  static const std::string kHostile[] = {
      "\xff", "\xc3", "\x00", "\n\x01\x1b[2J", "\xed\xa0\x80", "\"", "}", "{{", "%}", "\x7f"};
  for (int i = 0; i < count; ++i) {
    std::string m = seed;
    const size_t at = m.empty() ? 0 : rng() % m.size();
    switch (i % 4) {
      case 0:
        m.resize(at);
        break;
      case 1:
        for (int k = 0; k < 4 && !m.empty(); ++k) m[rng() % m.size()] = static_cast<char>(rng());
        break;
      case 2:
        m.insert(at, kHostile[rng() % std::size(kHostile)]);
        break;
      default:
        if (!m.empty()) m[at] = static_cast<char>(m[at] ^ (1 << (rng() % 8)));
        break;
    }
    out.push_back(std::move(m));
  }
  return out;
}

// Runs `load` on every variant; counts errors and checks each message.
void check_loader(const std::string& what, const std::string& seed, const std::string& must_name,
                  const std::function<void(const std::string&)>& load, int count = 200) {
  int errors = 0;
  for (const std::string& m : mutations(seed, count, 12345)) {
    try {
      load(m);
    } catch (const Error& e) {
      ++errors;
      const std::string msg = e.what();
      ASSERT_FALSE(msg.empty()) << what;
      ASSERT_TRUE(printable_utf8(msg)) << what << ": " << msg;
      if (!must_name.empty()) {
        EXPECT_NE(msg.find(must_name), std::string::npos) << what << ": " << msg;
      }
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": a non-loom exception escaped: " << e.what();
    }
  }
  EXPECT_GT(errors, count / 4) << what << ": the mutations should mostly be errors";
}

const fs::path kData = LOOM_TEST_DATA_DIR;
const fs::path kFuzz = fs::path(LOOM_SOURCE_DIR) / "tests/fuzz";

TEST(MalformedMessages, GgufModelFiles) {
  const fs::path p = dir() / "model-under-test.gguf";
  check_loader(
      "gguf model", read(kFuzz / "corpus/model_load/llama_q8_0.gguf"), "model-under-test.gguf",
      [&](const std::string& m) {
        write(p, m);
        app::load_model(p.string(), 1, true);
      },
      120);
}

TEST(MalformedMessages, GgufVocabularies) {
  const std::string seed = read(kFuzz / "corpus/gguf_vocab/llama_spm.gguf");
  check_loader("gguf vocab", seed, "", [&](const std::string& m) {
    const GgufFile f = GgufFile::parse("vocab-under-test.gguf",
                                       reinterpret_cast<const uint8_t*>(m.data()), m.size());
    tokenizer::tokenizer_from_gguf(f);
  });
}

TEST(MalformedMessages, SafetensorsFiles) {
  const fs::path p = dir() / "weights-under-test.safetensors";
  check_loader("safetensors", read(kFuzz / "corpus/safetensors/small.safetensors"),
               "weights-under-test.safetensors", [&](const std::string& m) {
                 write(p, m);
                 SafetensorsFile::open(p.string());
               });
}

TEST(MalformedMessages, SafetensorsIndex) {
  const fs::path d = dir() / "sharded";
  fs::create_directories(d);
  const float values[4] = {1, 2, 3, 4};
  {
    std::string header = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
    std::string bytes(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(bytes.data(), &n, 8);
    bytes += header;
    bytes.append(reinterpret_cast<const char*>(values), 16);
    write(d / "model-00001-of-00001.safetensors", bytes);
  }
  check_loader("safetensors index",
               R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00001.safetensors"}})",
               "model.safetensors.index.json", [&](const std::string& m) {
                 write(d / "model.safetensors.index.json", m);
                 SafetensorsSet::open_dir(d.string());
               });
}

TEST(MalformedMessages, ConfigJson) {
  const std::string path = (dir() / "config.json").string();
  check_loader("config.json", read(kData / "ref/models/llama-tiny-llama2vocab/config.json"),
               "config.json", [&](const std::string& m) { parse_hf_config(m, path); });
}

TEST(MalformedMessages, TokenizerJson) {
  const fs::path p = dir() / "tokenizer-under-test.json";
  check_loader("tokenizer.json", read(kFuzz / "corpus/tokenizer_json/bert.json"),
               "tokenizer-under-test.json", [&](const std::string& m) {
                 write(p, m);
                 tokenizer::Tokenizer::from_hf_json(p);
               });
}

TEST(MalformedMessages, TokenizerConfigChatTemplates) {
  check_loader(
      "tokenizer_config.json", read(kFuzz / "corpus/chat_template_config/tokenizer-qwen3.json"), "",
      [&](const std::string& m) {
        const auto t = app::ModelChatTemplates::from_hf_files("folder-under-test", m, {});
        jinja::ChatRequest req;
        req.messages = nlohmann::ordered_json::parse(R"([{"role": "user", "content": "hi"}])");
        req.add_generation_prompt = true;
        t.apply(req);
      });
}

TEST(MalformedMessages, JinjaTemplates) {
  check_loader("jinja", read(kFuzz / "corpus/jinja/tokenizer-qwen3.jinja"), "template-under-test",
               [&](const std::string& m) {
                 const auto t = jinja::Template::parse(m, "template-under-test");
                 jinja::Dict ctx;
                 t.render(ctx);
               });
}

TEST(MalformedMessages, Images) {
  for (const char* name : {"rgb.png", "rgb.jpg", "progressive.jpg", "palette.png"}) {
    check_loader(
        name, read(kFuzz / "corpus/image" / name), "image-under-test",
        [&](const std::string& m) {
          image::decode_image({reinterpret_cast<const uint8_t*>(m.data()), m.size()},
                              "image-under-test");
        },
        100);
  }
}

TEST(MalformedMessages, PreprocessorConfig) {
  check_loader("preprocessor_config.json",
               read(kData / "ref/models/clip-vision-tiny/preprocessor_config.json"),
               "preprocessor-under-test.json", [&](const std::string& m) {
                 image::ImageProcessor::from_json(m, "preprocessor-under-test.json");
               });
}

}  // namespace
}  // namespace loom

// MaskBench (guidance-ai/jsonschemabench) cases through loom's grammar engine, by its method:
// compile the schema once (time to first mask = compile + the first mask), then for each test
// instance serialize it as Python's json.dumps(data, indent=None, ensure_ascii=False), tokenize
// that text without special tokens, and for each token compute the mask (time between masks)
// and check the token is allowed. A valid instance must be accepted token by token and end in
// an accepting state; an invalid one must be rejected somewhere. A schema passes when it
// compiles and every test is judged right.
// Thread-safety: one case at a time per call; the vocabulary is shared read-only.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "grammar/matcher.h"
#include "tokenizer/tokenizer.h"

namespace loom::app {

// Python's json.dumps(v, indent=None, ensure_ascii=False): separators ", " and ": ", floats
// as repr() writes them, non-ASCII raw, \uXXXX (lowercase) for other control characters.
std::string python_json_dumps(const nlohmann::ordered_json& v);

struct MaskBenchCase {
  enum class Verdict { kPassing, kCompileError, kValidationError, kInvalidationError, kTimeout };
  std::string id;
  Verdict verdict = Verdict::kPassing;
  std::string detail;          // the compile error, or which test was misjudged
  double ttfm_us = 0;          // compile + first mask
  std::vector<double> tbm_us;  // one per mask after the first
  int64_t tokens = 0;
};

struct MaskBenchOptions {
  double compile_limit_s = 10.0;
};

// Runs one MaskBench JSON object ({"id", "schema", "tests": [{"valid", "data"}]}).
MaskBenchCase run_maskbench_case(const nlohmann::ordered_json& line,
                                 const tokenizer::Tokenizer& tokenizer,
                                 const std::shared_ptr<const grammar::TokenVocab>& vocab,
                                 const MaskBenchOptions& options = {});

}  // namespace loom::app

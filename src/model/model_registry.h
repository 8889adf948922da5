// Maps architecture names to model builders. Each family file registers its names.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"

namespace loom {

class ModelRegistry {
 public:
  using Builder =
      std::function<std::unique_ptr<CausalLM>(const ModelSpec&, Backend&, const ShardSpec&)>;
  void add(std::string arch, Builder b) { builders_.emplace_back(std::move(arch), std::move(b)); }
  const Builder* find(const std::string& arch) const {
    for (const auto& [a, b] : builders_) {
      if (a == arch) return &b;
    }
    return nullptr;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [a, b] : builders_) out.push_back(a);
    return out;
  }

 private:
  std::vector<std::pair<std::string, Builder>> builders_;
};

void register_llama_family(ModelRegistry& r);
void register_gemma(ModelRegistry& r);
void register_gpt2(ModelRegistry& r);

}  // namespace loom

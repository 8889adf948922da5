// The inputs a multimodal decoder needs, on a text model: precomputed embedding rows (image
// features) replacing token embeddings, and multi-axis rope positions; plus the checks on them.
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "io/model_spec.h"
#include "model/model.h"
#include "reference_util.h"

namespace loom {
namespace {

class ModelInputs : public ::testing::Test {
 protected:
  void SetUp() override {
    spec_ = load_model_spec(test::ref_model_dir("qwen2-tiny"));
    be_ = make_cpu_backend(1);
    model_ = load_causal_lm(spec_, *be_);
  }
  // All logits of `tokens` from position 0, after `edit` has changed the batch.
  std::vector<float> run(const std::vector<int32_t>& tokens, void (*edit)(Batch&, ModelInputs&)) {
    const std::unique_ptr<KvCache> cache = model_->make_kv_cache(4, 16);
    const std::vector<int32_t> table = {2, 0, 3, 1};
    Batch b;
    b.add_sequence(tokens, 0, table, /*all_logits=*/true);
    if (edit != nullptr) edit(b, *this);
    Activations logits;
    model_->forward(b, *cache, logits);
    return be_->download_all(logits);
  }

  ModelSpec spec_;
  std::unique_ptr<Backend> be_;
  std::unique_ptr<CausalLM> model_;

 public:
  Activations features_;  // the "image features" the edits inject
};

TEST_F(ModelInputs, InjectedEmbeddingsActAsTheTokensTheyEmbed) {
  const std::vector<int32_t> tokens = {5, 17, 42, 99, 7, 3};
  const std::vector<float> plain = run(tokens, nullptr);
  // Rows 2 and 4 get the embeddings of tokens 42 and 7 from outside: the same logits.
  const TensorView table = spec_.find("token_embd.weight")->view();
  be_->embed(table, std::vector<int32_t>{42, 7}, features_);
  const std::vector<float> same = run(tokens, [](Batch& b, ModelInputs& t) {
    b.embeddings = &t.features_;
    b.embedding_rows = {2, 4};
  });
  EXPECT_EQ(same, plain);
  // Features of other tokens (8, 9) at those rows: the logits of that token sequence.
  be_->embed(table, std::vector<int32_t>{8, 9}, features_);
  const std::vector<float> swapped = run(tokens, [](Batch& b, ModelInputs& t) {
    b.embeddings = &t.features_;
    b.embedding_rows = {2, 4};
  });
  EXPECT_EQ(swapped, run({5, 17, 8, 99, 9, 3}, nullptr));
  EXPECT_NE(swapped, plain);
}

TEST_F(ModelInputs, ThreeEqualRopeAxesAreThePlainPositions) {
  const std::vector<int32_t> tokens = {5, 17, 42, 99, 7, 3};
  const std::vector<float> plain = run(tokens, nullptr);
  const std::vector<float> axes = run(tokens, [](Batch& b, ModelInputs&) {
    b.rope_axes = 3;
    for (int a = 0; a < 3; ++a)
      b.rope_positions.insert(b.rope_positions.end(), b.positions.begin(), b.positions.end());
  });
  EXPECT_EQ(axes, plain);
  // Shifted rope positions (as after an image in Qwen2-VL) change the logits.
  const std::vector<float> shifted = run(tokens, [](Batch& b, ModelInputs&) {
    for (int32_t p : b.positions) b.rope_positions.push_back(p + 5);
  });
  EXPECT_NE(shifted, plain);
}

TEST_F(ModelInputs, MalformedInputsAreRefused) {
  const std::vector<int32_t> tokens = {5, 17, 42};
  be_->embed(spec_.find("token_embd.weight")->view(), std::vector<int32_t>{1}, features_);
  auto refused = [&](void (*edit)(Batch&, ModelInputs&), const char* what) {
    try {
      run(tokens, edit);
      ADD_FAILURE() << what << ": no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << what << ": " << e.what();
    }
  };
  refused(
      [](Batch& b, ModelInputs& t) {
        b.embeddings = &t.features_;
        b.embedding_rows = {0, 1};  // two rows for one feature row
      },
      "row count");
  refused(
      [](Batch& b, ModelInputs& t) {
        b.embeddings = &t.features_;
        b.embedding_rows = {3};  // past the batch
      },
      "row range");
  refused([](Batch& b, ModelInputs&) { b.embedding_rows = {0}; }, "rows without embeddings");
  refused(
      [](Batch& b, ModelInputs&) {
        b.rope_axes = 3;
        b.rope_positions = {0, 1, 2};  // one axis' worth
      },
      "rope positions");
}

}  // namespace
}  // namespace loom

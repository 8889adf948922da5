#include "app/drafting.h"

#include "core/error.h"
#include "core/mapped_file.h"
#include "tokenizer/tokenizer.h"

namespace loom::app {

Drafting make_drafting(const DraftArgs& args, const LoadedModel& target, int threads,
                       int64_t context) {
  Drafting d;
  if (!args.draft.empty()) {
    d.draft_model.emplace(
        load_model(args.draft, threads, /*want_tokenizer=*/false, false, false, target.device));
    const int64_t draft_vocab = d.draft_model->model->info().vocab_size;
    const int64_t vocab = target.model->info().vocab_size;
    if (draft_vocab != vocab) {
      fail(ErrorCode::kInvalidArgument,
           "--draft {} has a vocabulary of {} tokens but the model has {}: a draft model must "
           "share the vocabulary",
           args.draft, draft_vocab, vocab);
    }
    CausalLM* draft = d.draft_model->model.get();
    d.factory = [draft](int64_t tokens) -> std::unique_ptr<Drafter> {
      return std::make_unique<ModelDrafter>(*draft, tokens);
    };
  } else if (args.spec == "ngram") {
    std::shared_ptr<const std::vector<int32_t>> corpus;
    if (!args.corpus.empty()) {
      corpus = std::make_shared<const std::vector<int32_t>>(
          target.require_tokenizer().encode(read_text_file(args.corpus), false));
    }
    d.factory = [corpus](int64_t) -> std::unique_ptr<Drafter> {
      return std::make_unique<NgramDrafter>(2, 4, corpus);
    };
  }
  if (d.factory) d.drafter = d.factory(context);
  return d;
}

}  // namespace loom::app

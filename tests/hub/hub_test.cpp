// Hub names and the huggingface_hub cache layout, without a network: names parse as the Hub
// spells them (and paths do not), GGUF tags pick the file a person means, and a cache laid
// out as huggingface_hub lays it out (refs, blobs, snapshot symlinks) resolves to the folder
// or file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "hub/hub.h"

namespace loom::hub {
namespace {

namespace fs = std::filesystem;

TEST(HubName, ParsesWhatTheHubNames) {
  auto n = parse_hub_name("TheBloke/Llama-2-7B-GGUF:Q4_K_M");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->repo, "TheBloke/Llama-2-7B-GGUF");
  EXPECT_EQ(n->tag, "Q4_K_M");
  EXPECT_EQ(n->revision, "main");
  EXPECT_EQ(n->text(), "TheBloke/Llama-2-7B-GGUF:Q4_K_M");

  n = parse_hub_name("Qwen/Qwen3-0.6B@v1.0");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->repo, "Qwen/Qwen3-0.6B");
  EXPECT_EQ(n->revision, "v1.0");
  EXPECT_EQ(n->tag, "");

  n = parse_hub_name("hf.co/org/repo:sub/dir/model-q8_0.gguf");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->repo, "org/repo");
  EXPECT_EQ(n->tag, "sub/dir/model-q8_0.gguf");
  EXPECT_TRUE(parse_hub_name("gpt2"));  // legacy single-segment names

  for (const char* bad : {"", "/abs/path", "./rel", "../up", "~/x", "a/b/c", "org/na me", "org/-x",
                          "org/x-", "org/a--b", "org/a..b", "org/x:../../etc/passwd", "org/x:/abs",
                          "org/x@", "org/x@../x", "org//x", "org/x:a//b"}) {
    EXPECT_FALSE(parse_hub_name(bad)) << bad;
  }
}

HubName name(const std::string& s) {
  auto n = parse_hub_name(s);
  EXPECT_TRUE(n) << s;
  return n.value_or(HubName{});
}

TEST(HubGguf, TagsPickTheFileAPersonMeans) {
  const std::vector<std::string> files = {"README.md",
                                          "Model-7B-Q4_K_M.gguf",
                                          "Model-7B-Q4_K_S.gguf",
                                          "Model-7B-Q8_0.gguf",
                                          "Q6_K/Model-7B-Q6_K-00001-of-00002.gguf",
                                          "Q6_K/Model-7B-Q6_K-00002-of-00002.gguf",
                                          "mmproj-Model-7B-f16.gguf"};
  EXPECT_EQ(select_gguf(files, name("o/m:Q4_K_M")),
            std::vector<std::string>{"Model-7B-Q4_K_M.gguf"});
  EXPECT_EQ(select_gguf(files, name("o/m:q8_0")), std::vector<std::string>{"Model-7B-Q8_0.gguf"});
  // A split model comes with all its parts, in order.
  EXPECT_EQ(select_gguf(files, name("o/m:Q6_K")),
            (std::vector<std::string>{"Q6_K/Model-7B-Q6_K-00001-of-00002.gguf",
                                      "Q6_K/Model-7B-Q6_K-00002-of-00002.gguf"}));
  // No tag: Q4_K_M, as llama.cpp's -hf does.
  EXPECT_EQ(select_gguf(files, name("o/m")), std::vector<std::string>{"Model-7B-Q4_K_M.gguf"});
  // A file by name.
  EXPECT_EQ(select_gguf(files, name("o/m:Model-7B-Q4_K_S.gguf")),
            std::vector<std::string>{"Model-7B-Q4_K_S.gguf"});
  // "Q4_K" is not "Q4_K_M": nothing is named Q4_K alone, and the error lists what there is.
  try {
    select_gguf(files, name("o/m:Q4_K"));
    ADD_FAILURE() << "Q4_K matched";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("Model-7B-Q4_K_S.gguf"), std::string::npos) << e.what();
  }
  // The projector only when asked for.
  EXPECT_EQ(select_gguf(files, name("o/m:mmproj-Model-7B-f16.gguf")),
            std::vector<std::string>{"mmproj-Model-7B-f16.gguf"});
  // Several models and no Q4_K_M: the choice is the person's.
  EXPECT_THROW(select_gguf({"a-Q8_0.gguf", "a-F16.gguf"}, name("o/m")), Error);
  EXPECT_EQ(select_gguf({"only.gguf", "mmproj-x.gguf"}, name("o/m")),
            std::vector<std::string>{"only.gguf"});
}

class HubCache : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("loom-hub-cache-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // What huggingface_hub writes: blobs named by ETag, snapshot entries linking to them.
  void add(const std::string& repo, const std::string& commit, const std::string& file,
           const std::string& bytes, const std::string& etag) {
    const fs::path r = repo_folder(root_.string(), repo);
    fs::create_directories(r / "blobs");
    std::ofstream(r / "blobs" / etag) << bytes;
    const fs::path link = r / "snapshots" / commit / file;
    fs::create_directories(link.parent_path());
    fs::create_symlink(fs::relative(r / "blobs" / etag, link.parent_path()), link);
  }
  void ref(const std::string& repo, const std::string& revision, const std::string& commit) {
    const fs::path p = fs::path(repo_folder(root_.string(), repo)) / "refs" / revision;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << commit;  // huggingface_hub writes no newline
  }
  fs::path root_;
};

const std::string kCommitA(40, 'a');
const std::string kCommitB(40, 'b');

TEST_F(HubCache, ResolvesFoldersAndGgufFilesWithoutNetwork) {
  EXPECT_EQ(repo_folder("/c", "org/name"), "/c/models--org--name");
  add("org/tiny", kCommitA, "config.json", "{}", "1111");
  add("org/tiny", kCommitA, "model.safetensors", "x", std::string(64, 'e'));
  ref("org/tiny", "main", kCommitA);
  EXPECT_EQ(resolve_cached(name("org/tiny"), root_.string()),
            (fs::path(repo_folder(root_.string(), "org/tiny")) / "snapshots" / kCommitA).string());

  add("org/tiny-gguf", kCommitB, "tiny-Q8_0.gguf", "g", "2222");
  add("org/tiny-gguf", kCommitB, "tiny-F16.gguf", "h", "3333");
  ref("org/tiny-gguf", "main", kCommitB);
  const auto q8 = resolve_cached(name("org/tiny-gguf:Q8_0"), root_.string());
  ASSERT_TRUE(q8);
  EXPECT_TRUE(q8->ends_with("/snapshots/" + kCommitB + "/tiny-Q8_0.gguf")) << *q8;
  // A pinned commit needs no ref; a branch without a ref, or a missing quant, is not cached.
  EXPECT_TRUE(resolve_cached(name("org/tiny-gguf@" + kCommitB + ":F16"), root_.string()));
  EXPECT_FALSE(resolve_cached(name("org/tiny@dev"), root_.string()));
  EXPECT_FALSE(resolve_cached(name("org/absent"), root_.string()));
  EXPECT_THROW(resolve_cached(name("org/tiny-gguf:Q4_0"), root_.string()), Error);
  // A split model with a part still missing is not resolved.
  add("org/split", kCommitA, "m-Q8_0-00001-of-00002.gguf", "p", "4444");
  ref("org/split", "main", kCommitA);
  EXPECT_FALSE(resolve_cached(name("org/split:Q8_0"), root_.string()));
  add("org/split", kCommitA, "m-Q8_0-00002-of-00002.gguf", "q", "5555");
  EXPECT_TRUE(resolve_cached(name("org/split:Q8_0"), root_.string()));
}

TEST_F(HubCache, EnvironmentPicksTheCache) {
  ::setenv("HF_HUB_CACHE", "/x/hub", 1);
  EXPECT_EQ(cache_dir(), "/x/hub");
  ::unsetenv("HF_HUB_CACHE");
  ::setenv("HF_HOME", "/y", 1);
  EXPECT_EQ(cache_dir(), "/y/hub");
  ::unsetenv("HF_HOME");
  // Offline, a name that is not cached is a clear error naming where it looked.
  ::setenv("HF_HUB_CACHE", root_.c_str(), 1);
  ::setenv("HF_HUB_OFFLINE", "1", 1);
  try {
    resolve_model_argument("org/not-here");
    ADD_FAILURE() << "resolved";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("models--org--not-here"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("HF_HUB_OFFLINE"), std::string::npos) << e.what();
  }
  // A local path that exists is itself, whatever it looks like.
  EXPECT_EQ(resolve_model_argument(root_.string()), root_.string());
  ::unsetenv("HF_HUB_OFFLINE");
  ::unsetenv("HF_HUB_CACHE");
}

}  // namespace
}  // namespace loom::hub

// `engine predict` killed with SIGKILL at seeded random moments and resumed each time, through
// the real binary: the outputs must equal an uninterrupted run's, predictions.csv row for row
// and every mask byte for byte, with one journal record per image.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/dsl/parser.h"
#include "tests/engine/predict_inputs.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/engine/text_files.h"
#include "tests/engine/tiny_graph.h"

namespace {

namespace fs = std::filesystem;
using emt::test::read_text;

constexpr int kSide = 32;
constexpr int kImages = 60;  // and one broken file
constexpr const char* kJournal = "predictions.journal";

class PredictKill : public emt::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    const emt::GraphFile file =
        emt::parse_graph_file(write("tiny.toml", emt::test::kTinyGraph), emt::test::kSmallData);
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> side(20, 60);
    std::vector<std::pair<std::string, cv::Size>> images;
    for (int i = 0; i < kImages; ++i)
      images.push_back(
          {"img/" + std::string(i % 3 ? "" : "sub/") + "x" + std::to_string(i) + ".png",
           {side(rng), side(rng)}});
    emt::test::write_noise_images(dir_, images, rng);
    write("img/broken.png", "not a PNG");
    emt::test::write_predict_weights(file, dir_ / "w.safetensors", kSide);
  }

  // Starts `engine predict` into dir_/out with its output in dir_/out.log.
  pid_t launch(const std::string& out, bool resume) {
    std::vector<std::string> args = {EMT_ENGINE_BINARY,
                                     "predict",
                                     (dir_ / "tiny.toml").string(),
                                     "--weights",
                                     (dir_ / "w.safetensors").string(),
                                     "--data",
                                     (dir_ / "img").string(),
                                     "--out",
                                     (dir_ / out).string(),
                                     "--batch",
                                     "2",
                                     "--threads",
                                     "1",
                                     "--backend",
                                     "reference"};
    if (resume) args.push_back("--resume");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log = (dir_ / (out + ".log")).string();
    const pid_t pid = ::fork();
    if (pid == 0) {  // only async-signal-safe calls until exec
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    EXPECT_GT(pid, 0);
    return pid;
  }

  static int wait_for(pid_t pid) {
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    return status;
  }

  // Image records in the journal: its complete lines but the header.
  size_t journal_records(const std::string& out) const {
    const std::string text = read_text(dir_ / out / kJournal);
    const auto lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
    return lines > 0 ? lines - 1 : 0;
  }

  // Polls the job until it ends by itself or kill_now() says so, then kills it with SIGKILL;
  // returns its wait status.
  template <typename Predicate>
  static int kill_when(pid_t pid, Predicate kill_now) {
    int status = 0;
    while (!kill_now()) {
      if (::waitpid(pid, &status, WNOHANG) == pid) return status;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    ::kill(pid, SIGKILL);
    return wait_for(pid);
  }

  // Every file below dir, relative to it, with its bytes.
  static std::vector<std::pair<std::string, std::string>> files(const fs::path& dir) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const fs::directory_entry& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file())
        out.push_back({fs::relative(e.path(), dir).generic_string(), read_text(e.path())});
    std::sort(out.begin(), out.end());
    return out;
  }
};

TEST_F(PredictKill, KilledAndResumedEqualsAnUninterruptedRun) {
  const int ref = wait_for(launch("ref", false));
  ASSERT_TRUE(WIFEXITED(ref) && WEXITSTATUS(ref) == 0) << read_text(dir_ / "ref.log");
  const size_t total = kImages + 1;
  ASSERT_EQ(journal_records("ref"), total);

  std::mt19937 rng(2026);
  int killed_mid_job = 0;
  for (int attempt = 0; attempt < 8; ++attempt) {
    const size_t before = journal_records("out");
    const pid_t pid = launch("out", attempt > 0);
    int status = 0;
    if (attempt % 2 == 0) {  // once a few more records are in
      const size_t at =
          std::min(total - 1, before + std::uniform_int_distribution<size_t>(1, 8)(rng));
      status = kill_when(pid, [&] { return journal_records("out") >= at; });
    } else {  // a random moment: from start-up on, or after the next record (mid-batch)
      const auto delay = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 200)(rng));
      auto at = std::chrono::steady_clock::now() + delay;
      bool counting = attempt == 1;
      status = kill_when(pid, [&] {
        if (!counting && journal_records("out") > before) {
          counting = true;
          at = std::chrono::steady_clock::now() + delay;
        }
        return counting && std::chrono::steady_clock::now() >= at;
      });
    }
    const size_t records = journal_records("out");
    killed_mid_job += WIFSIGNALED(status) && records > before && records < total;
  }
  const int last = wait_for(launch("out", true));
  ASSERT_TRUE(WIFEXITED(last) && WEXITSTATUS(last) == 0) << read_text(dir_ / "out.log");
  EXPECT_GE(killed_mid_job, 2) << "the kills must land while images were being predicted";

  EXPECT_EQ(read_text(dir_ / "out" / "predictions.csv"),
            read_text(dir_ / "ref" / "predictions.csv"));
  EXPECT_EQ(emt::test::split(read_text(dir_ / "out" / "predictions.csv"), '\n').size(),
            kImages + 1u)
      << "a header and a row per readable image";
  EXPECT_EQ(read_text(dir_ / "out" / "skipped.csv"), read_text(dir_ / "ref" / "skipped.csv"));
  const auto masks = files(dir_ / "out" / "masks");
  EXPECT_EQ(masks.size(), static_cast<size_t>(kImages)) << "and no temporary file left";
  EXPECT_TRUE(masks == files(dir_ / "ref" / "masks"));
  for (const auto& [name, bytes] : files(dir_ / "out"))
    EXPECT_EQ(name.find(".tmp-"), std::string::npos) << "a temporary file left: " << name;
  EXPECT_EQ(journal_records("out"), total) << "one record per image: none lost or repeated";
  EXPECT_EQ(read_text(dir_ / "out" / kJournal), read_text(dir_ / "ref" / kJournal));

  const int refused = wait_for(launch("out", false));
  EXPECT_TRUE(WIFEXITED(refused) && WEXITSTATUS(refused) == 1);
  EXPECT_NE(read_text(dir_ / "out.log").find("--resume"), std::string::npos)
      << read_text(dir_ / "out.log");
}

}  // namespace

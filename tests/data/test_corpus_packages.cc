// The pinned corpus packages: the C++ list and scripts/corpus_packages.sh name the same packages
// in the same order, and PackageFiles reads dpkg's lists.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "attend/corpus.h"

namespace attend::data {
namespace {

TEST(CorpusPackages, SameListAsTheSetupScript) {
  std::ifstream in(std::string(ATTEND_SOURCE_DIR) + "/scripts/corpus_packages.sh");
  ASSERT_TRUE(in) << "scripts/corpus_packages.sh";
  std::stringstream all;
  all << in.rdbuf();
  const std::string text = all.str();
  const size_t begin = text.find("CORPUS_PACKAGES=(");
  ASSERT_NE(begin, std::string::npos);
  const size_t end = text.find(')', begin);
  ASSERT_NE(end, std::string::npos);
  std::istringstream words(text.substr(begin + 17, end - begin - 17));
  std::vector<std::string> script;
  for (std::string w; words >> w;) script.push_back(w);
  EXPECT_EQ(CorpusPackages(), script);
}

TEST(CorpusPackages, PackageFilesListsWhatDpkgInstalled) {
  // coreutils is essential on Debian: dpkg always lists /usr/bin/ls (or /bin/ls) for it.
  std::vector<std::string> bin = PackageFiles("coreutils", "/usr/bin/");
  const std::vector<std::string> old_bin = PackageFiles("coreutils", "/bin/");
  bin.insert(bin.end(), old_bin.begin(), old_bin.end());
  ASSERT_FALSE(bin.empty());
  EXPECT_TRUE(std::find(bin.begin(), bin.end(), "/usr/bin/ls") != bin.end() ||
              std::find(bin.begin(), bin.end(), "/bin/ls") != bin.end());
  const std::vector<std::string> files = PackageFiles("coreutils", "/usr/");
  EXPECT_TRUE(std::is_sorted(files.begin(), files.end()));
  EXPECT_EQ(std::adjacent_find(files.begin(), files.end()), files.end());
  for (const std::string& f : files) EXPECT_EQ(f.rfind("/usr/", 0), 0u) << f;
  EXPECT_TRUE(PackageFiles("attend-no-such-package", "/").empty());
  EXPECT_TRUE(PackageFiles("coreutils", "/no/such/prefix/").empty());
}

}  // namespace
}  // namespace attend::data

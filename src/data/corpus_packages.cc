// The pinned corpus packages and the files dpkg lists for them (attend/corpus.h).
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "attend/corpus.h"

namespace attend::data {
namespace fs = std::filesystem;

const std::vector<std::string>& CorpusPackages() {
  // scripts/corpus_packages.sh, CORPUS_PACKAGES, in its order.
  static const std::vector<std::string> packages = {"iso-codes",
                                                    "libc-l10n",
                                                    "coreutils",
                                                    "binutils-common",
                                                    "git",
                                                    "gnupg-l10n",
                                                    "krb5-locales",
                                                    "xkb-data",
                                                    "libglib2.0-data",
                                                    "libgtk-3-common",
                                                    "libgtk2.0-common",
                                                    "libgphoto2-l10n",
                                                    "libexif12",
                                                    "gcc-12-locales",
                                                    "util-linux-locales",
                                                    "e2fsprogs-l10n",
                                                    "xfsprogs",
                                                    "cryptsetup-bin",
                                                    "libgpg-error-l10n",
                                                    "gnumeric-common",
                                                    "gnucash-common",
                                                    "evolution-common",
                                                    "evolution-data-server-common",
                                                    "vlc-l10n",
                                                    "pidgin-data",
                                                    "hexchat-common",
                                                    "filezilla-common",
                                                    "lynx-common",
                                                    "mc-data",
                                                    "aptitude-common",
                                                    "libsane-common"};
  return packages;
}

std::vector<std::string> PackageFiles(const std::string& package, const std::string& prefix) {
  const fs::path info = "/var/lib/dpkg/info";
  const std::string plain = package + ".list", multiarch = package + ":";
  std::set<std::string> files;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(info, ec)) {
    const std::string name = e.path().filename().string();
    const bool ours = name == plain || (name.rfind(multiarch, 0) == 0 && name.size() > 5 &&
                                        name.compare(name.size() - 5, 5, ".list") == 0);
    if (!ours) continue;
    std::ifstream in(e.path());
    for (std::string line; std::getline(in, line);)
      if (line.rfind(prefix, 0) == 0 && fs::is_regular_file(line, ec)) files.insert(line);
  }
  return {files.begin(), files.end()};
}

}  // namespace attend::data

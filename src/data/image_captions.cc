// Readers of the image corpora's files (and users' own): captions as "image<TAB>caption" lines and
// item boxes as JSON lines, with image paths resolved against the file's directory.
#include <algorithm>
#include <filesystem>
#include <unordered_map>

#include "attend/corpus.h"
#include "attend/error.h"
#include "io/untrusted_json.h"

namespace attend::data {
namespace {

// A longer line is an error (its length is named).
constexpr size_t kMaxLineBytes = 4096;

// `image` as written in `listing`: absolute paths stay, relative ones are taken from the listing's
// directory.
std::string Resolve(const std::string& listing, const std::string& image) {
  const std::filesystem::path p(image);
  if (p.is_absolute()) return image;
  const std::filesystem::path dir = std::filesystem::path(listing).parent_path();
  return dir.empty() ? image : (dir / p).string();
}

std::vector<std::string> Lines(const std::string& path) {
  ReadOptions o;
  o.max_bytes = kMaxLineBytes;
  std::vector<std::string> lines = ReadLines(path, o);
  ATTEND_CHECK(!lines.empty(), path, ": no lines");
  return lines;
}

}  // namespace

std::vector<ImageCaption> ReadCaptionsTsv(const std::string& path) {
  const std::vector<std::string> lines = Lines(path);
  std::vector<ImageCaption> out;
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const size_t tab = line.find('\t');
    const size_t tabs = static_cast<size_t>(std::count(line.begin(), line.end(), '\t'));
    ATTEND_CHECK(tabs == 1, path, ":", i + 1,
                 ": expected exactly one tab (image<TAB>caption), found ", tabs);
    const std::string image = line.substr(0, tab), caption = line.substr(tab + 1);
    ATTEND_CHECK(!image.empty(), path, ":", i + 1, ": empty image path");
    ATTEND_CHECK(!caption.empty(), path, ":", i + 1, ": empty caption");
    const std::string resolved = Resolve(path, image);
    auto [it, fresh] = index.emplace(resolved, out.size());
    if (fresh) out.push_back({resolved, {}});
    out[it->second].captions.push_back(caption);
  }
  return out;
}

std::vector<std::pair<std::string, std::vector<ItemBox>>> ReadItemsJsonl(const std::string& path) {
  const std::vector<std::string> lines = Lines(path);
  std::vector<std::pair<std::string, std::vector<ItemBox>>> out;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string where = path + ":" + std::to_string(i + 1);
    const nlohmann::json j = io::ParseUntrustedJson(lines[i], where);
    ATTEND_CHECK(j.is_object(), where,
                 ": expected a JSON object {\"image\": ..., \"items\": [...]}");
    const auto image = j.find("image");
    ATTEND_CHECK(image != j.end() && image->is_string() && !image->get<std::string>().empty(),
                 where, ": \"image\" must be a non-empty string");
    const auto items = j.find("items");
    ATTEND_CHECK(items != j.end() && items->is_array(), where, ": \"items\" must be an array");
    std::vector<ItemBox> boxes;
    for (size_t k = 0; k < items->size(); ++k) {
      const nlohmann::json& it = (*items)[k];
      const std::string what = where + ": item " + std::to_string(k);
      ATTEND_CHECK(it.is_object(), what, ": expected an object, found ", io::JsonExcerpt(it));
      const auto label = it.find("label"), cls = it.find("class"), box = it.find("box");
      ATTEND_CHECK(label != it.end() && label->is_string(), what, ": \"label\" must be a string");
      ATTEND_CHECK(cls != it.end() && cls->is_number_integer(), what,
                   ": \"class\" must be an integer");
      ATTEND_CHECK(box != it.end() && box->is_array() && box->size() == 4, what,
                   ": \"box\" must be [x0, y0, x1, y1]");
      int64_t v[4];
      for (size_t c = 0; c < 4; ++c) {
        const nlohmann::json& x = (*box)[c];
        ATTEND_CHECK(x.is_number_integer(), what, ": box coordinate ", c, " is ",
                     io::JsonExcerpt(x), ", not an integer");
        v[c] = x.get<int64_t>();
      }
      ATTEND_CHECK(v[0] >= 0 && v[1] >= 0 && v[0] < v[2] && v[1] < v[3], what, ": box [", v[0],
                   ", ", v[1], ", ", v[2], ", ", v[3],
                   "] is not a box (need 0 <= x0 < x1 and 0 <= y0 < y1)");
      boxes.push_back({label->get<std::string>(), cls->get<int64_t>(), v[0], v[1], v[2], v[3]});
    }
    out.emplace_back(Resolve(path, image->get<std::string>()), std::move(boxes));
  }
  return out;
}

}  // namespace attend::data

// train/run_logs.cpp — metrics.csv and dynamics.csv: their columns, written and read in one place.
#include <attnlab/train/run_logs.h>

#include <stdexcept>

#include <fmt/format.h>

#include <attnlab/core/csv.h>

namespace attn {

// metrics.csv's columns in order: the row's field and how it is written. The optional ones are
// empty cells when they hold nothing.
#define ATTNLAB_METRICS_COLUMNS(X)                                                                       \
  X(step, "{}") X(epoch, "{}") X(train_loss, "{:.5f}") X(lr, "{:.6g}") X(grad_norm, "{:.4f}")            \
  X(tokens_per_s, "{:.1f}") X(train_seconds, "{:.2f}") X(wall_seconds, "{:.2f}") X(valid_loss, "{:.5f}") \
  X(valid_ppl, "{:.4f}") X(valid_bleu, "{:.2f}") X(valid_chrf, "{:.2f}")

template <class T>
static std::string cell(const T& v, fmt::format_string<const T&> f) {
  return fmt::format(f, v);
}
template <class T>
static std::string cell(const std::optional<T>& v, fmt::format_string<const T&> f) {
  return v ? fmt::format(f, *v) : std::string();
}

template <class T>
static void read_cell(const std::string& path, size_t line, const std::string& text, T& out) {
  out = T(csv_number(path, line, text));
}
template <class T>
static void read_cell(const std::string& path, size_t line, const std::string& text, std::optional<T>& out) {
  if (text.empty()) out.reset();
  else out = T(csv_number(path, line, text));
}

std::string metrics_header() {
  std::string h;
#define X(field, format) h += (h.empty() ? "" : ",") + std::string(#field);
  ATTNLAB_METRICS_COLUMNS(X)
#undef X
  return h;
}

std::string metrics_line(const MetricsRow& r) {
  std::string s;
  bool first = true;
#define X(field, format)     \
  if (!first) s += ',';      \
  s += cell(r.field, format); \
  first = false;
  ATTNLAB_METRICS_COLUMNS(X)
#undef X
  return s;
}

std::string metrics_cell(const MetricsRow& r, std::string_view column) {
#define X(field, format) \
  if (column == #field) return cell(r.field, format);
  ATTNLAB_METRICS_COLUMNS(X)
#undef X
  throw std::logic_error(fmt::format("metrics_cell: no column '{}' in metrics.csv", column));
}

std::string dynamics_header() { return "step,site,metric,value"; }

std::string dynamics_line(const DynRow& r) {
  return fmt::format("{},{},{},{:.6g}", r.step, csv_field(r.site), csv_field(r.metric), r.value);
}

// The rows after the header, each of `fields` cells; the header checked first.
static std::vector<std::vector<std::string>> rows_of(const std::string& path, const std::string& header) {
  std::vector<std::vector<std::string>> rows = read_csv(path);
  if (rows.empty()) return rows;
  const size_t fields = parse_csv(header + "\n", path)[0].size();
  std::string first;
  for (size_t k = 0; k < rows[0].size(); k++) first += (k ? "," : "") + rows[0][k];
  if (first != header)
    throw std::runtime_error(fmt::format("{}:1: expected the header line '{}' ({} fields), got '{}'", path, header, fields,
                                         first.substr(0, 80)));
  for (size_t i = 1; i < rows.size(); i++)
    if (rows[i].size() != fields)
      throw std::runtime_error(fmt::format("{}:{}: expected {} comma-separated fields, got {}", path, i + 1, fields, rows[i].size()));
  rows.erase(rows.begin());
  return rows;
}

// Steps increase down a run's log (several rows may share a step in dynamics.csv).
static void check_order(const std::string& path, size_t line, int64_t step, int64_t& last, bool strictly) {
  if (strictly ? step <= last : step < last)
    throw std::runtime_error(fmt::format("{}:{}: step {} after step {}: the steps of a run increase (two writers, or "
                                         "lines copied in by hand?)", path, line + 1, step, last));
  last = step;
}

std::vector<MetricsRow> read_metrics(const std::string& path) {
  std::vector<MetricsRow> out;
  int64_t last = -1;
  size_t line = 1;  // 0-based row index in the file: the header is row 0
  for (const std::vector<std::string>& cells : rows_of(path, metrics_header())) {
    MetricsRow r;
    size_t k = 0;
#define X(field, format) read_cell(path, line, cells[k++], r.field);
    ATTNLAB_METRICS_COLUMNS(X)
#undef X
    check_order(path, line, r.step, last, true);
    out.push_back(r);
    line++;
  }
  return out;
}

std::vector<DynRow> read_dynamics(const std::string& path) {
  std::vector<DynRow> out;
  int64_t last = -1;
  size_t line = 1;
  for (const std::vector<std::string>& cells : rows_of(path, dynamics_header())) {
    DynRow r;
    r.step = int64_t(csv_number(path, line, cells[0]));
    r.site = cells[1];
    r.metric = cells[2];
    r.value = csv_number(path, line, cells[3]);
    check_order(path, line, r.step, last, false);
    out.push_back(std::move(r));
    line++;
  }
  return out;
}

}  // namespace attn

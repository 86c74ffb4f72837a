// autograd/tape.cpp — recording, the reverse walk, anomaly checks, and the views of the tape.
#include <attnlab/autograd/tape.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <stdexcept>

#include <attnlab/autograd/registry.h>
#include <attnlab/core/kernels.h>

namespace attn {

static thread_local Tape* g_current_tape = nullptr;

static double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Tape* current_tape() { return g_current_tape; }
TapeScope::TapeScope(Tape& tape) : prev_(g_current_tape) { g_current_tape = &tape; }
TapeScope::~TapeScope() { g_current_tape = prev_; }
NoGradScope::NoGradScope() : prev_(g_current_tape) { g_current_tape = nullptr; }
NoGradScope::~NoGradScope() { g_current_tape = prev_; }

Var parameter(const std::string& name, Tensor value) {
  auto v = std::make_shared<Variable>();
  v->name = name;
  v->value = std::move(value);
  v->requires_grad = true;
  return v;
}

Var constant(Tensor value, const std::string& name) {
  auto v = std::make_shared<Variable>();
  v->name = name;
  v->value = std::move(value);
  return v;
}

GradDst grad_dst(const Var& v) {
  if (v->grad.defined()) return {v->grad.data(), true};
  v->grad = Tensor::empty(v->value.shape());
  return {v->grad.data(), false};
}

float* GradDst::zeroed_if_fresh(int64_t n) const {
  if (!accumulate) std::fill(data, data + n, 0.f);
  return data;
}

const Tensor& TapeEntry::get(const std::string& what) const {
  for (auto& [k, t] : saved)
    if (k == what) return t;
  throw std::logic_error("tape entry '" + op + "' saved no tensor named '" + what + "'");
}

Recorded record(const char* op, const std::string& name, Tensor value, std::vector<Var> inputs) {
  if (!is_registered_op(op))  // an op without a name in kOps has no gradcheck entry either
    throw std::logic_error(fmt::format("op '{}' is not in kOps (autograd/registry.h)", op));
  Recorded r;
  r.out = std::make_shared<Variable>();
  r.out->name = name.empty() ? op : name;
  r.out->value = std::move(value);
  Tape* tape = current_tape();
  if (tape && tape->anomaly && !all_finite(r.out->value))
    throw std::runtime_error(fmt::format("anomaly: op '{}' node '{}' (tape #{}) produced NaN/Inf in forward", op,
                                         r.out->name, tape->entries.size()));
  if (!tape) return r;
  bool any = std::any_of(inputs.begin(), inputs.end(), [](const Var& v) { return v->requires_grad; });
  if (!any) return r;
  r.out->requires_grad = true;
  r.out->tape_index = static_cast<int>(tape->entries.size());
  tape->entries.push_back(TapeEntry{op, r.out, std::move(inputs), {}, {}, {}});
  r.entry = &tape->entries.back();
  if (tape->profile) {
    const double t = now_seconds();
    if (tape->profile_mark > 0) r.entry->fwd_seconds = t - tape->profile_mark;
    tape->profile_mark = t;
  }
  return r;
}

void Tape::backward(const Var& loss) {
  if (loss->value.numel() != 1)
    throw std::logic_error("backward() needs a scalar loss, got shape " + shape_str(loss->value.shape()));
  // Intermediate gradients belong to one backward pass; leaves (parameters) accumulate.
  for (TapeEntry& e : entries) e.out->grad = Tensor();
  const GradDst seed = grad_dst(loss);  // d(loss)/d(loss) = 1
  seed.data[0] = 1.f;
  for (int i = static_cast<int>(entries.size()) - 1; i >= 0; i--) {
    TapeEntry& e = entries[i];
    if (!e.out->grad.defined()) continue;  // does not influence the loss
    if (profile) {
      const double t0 = now_seconds();
      e.backward(e);
      e.bwd_seconds = now_seconds() - t0;
    } else {
      e.backward(e);
    }
    if (!keep_grads) e.out->grad = Tensor();  // every consumer of e.out came later and has run
    if (!anomaly) continue;
    for (const Var& in : e.inputs)
      if (in->grad.defined() && !all_finite(in->grad))
        throw std::runtime_error(fmt::format("anomaly: backward of op '{}' node '{}' (tape #{}) produced NaN/Inf "
                                             "in the gradient for '{}'",
                                             e.op, e.out->name, i, in->name));
  }
}

static std::string input_ref(const Var& v) {
  return v->tape_index >= 0 ? fmt::format("#{}", v->tape_index) : v->name;
}

std::string Tape::dump() const {
  std::string out = fmt::format("{:>4}  {:<14} {:<34} {:<32} {:<16} {:>10} {:>10}\n", "#", "op", "name", "inputs",
                                "shape", "|value|", "|grad|");
  for (size_t i = 0; i < entries.size(); i++) {
    const TapeEntry& e = entries[i];
    std::string ins;
    for (size_t k = 0; k < e.inputs.size(); k++) ins += (k ? ", " : "") + input_ref(e.inputs[k]);
    std::string g = e.out->grad.defined() ? fmt::format("{:.4g}", l2_norm(e.out->grad)) : "-";
    out += fmt::format("{:>4}  {:<14} {:<34} {:<32} {:<16} {:>10.4g} {:>10}\n", i, e.op, e.out->name, ins,
                       shape_str(e.out->value.shape()), l2_norm(e.out->value), g);
  }
  return out;
}

// Text for an SVG document: &, < and > escaped.
static std::string xml_text(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : std::string(1, c);
  return o;
}

std::string Tape::to_dot() const {
  std::string out = "digraph tape {\n  rankdir=LR;\n  node [fontname=\"monospace\", fontsize=10];\n";
  std::map<const Variable*, std::string> leaves;
  for (size_t i = 0; i < entries.size(); i++) {
    const TapeEntry& e = entries[i];
    out += fmt::format("  n{} [label=\"#{} {}\\n{}\\n{}\"];\n", i, i, e.op, e.out->name, shape_str(e.out->value.shape()));
    for (const Var& in : e.inputs) {
      std::string src;
      if (in->tape_index >= 0) {
        src = fmt::format("n{}", in->tape_index);
      } else {
        auto it = leaves.find(in.get());
        if (it == leaves.end()) {
          src = fmt::format("l{}", leaves.size());
          leaves[in.get()] = src;
          out += fmt::format("  {} [shape=box, label=\"{}\\n{}\"];\n", src, in->name, shape_str(in->value.shape()));
        } else {
          src = it->second;
        }
      }
      out += fmt::format("  {} -> n{};\n", src, i);
    }
  }
  return out + "}\n";
}

std::string Tape::to_svg() const {
  const int W = 150, H = 44, gap_x = 70, gap_y = 26, pad = 16, top = 44;  // top: room for a bent arrow's label
  struct Box {
    int col = 0, row = 0;
    std::string l1, l2;
    bool leaf = false;
  };
  std::vector<Box> boxes;                  // leaves first (as met), then one per entry
  std::map<const Variable*, int> leaf_box;  // leaf -> its box
  std::vector<int> entry_box(entries.size());
  std::map<int, int> rows_in_col;
  auto place = [&](Box b) {
    b.row = rows_in_col[b.col]++;
    boxes.push_back(b);
    return int(boxes.size()) - 1;
  };
  for (const TapeEntry& e : entries)
    for (const Var& in : e.inputs)
      if (in->tape_index < 0 && !leaf_box.count(in.get()))
        leaf_box[in.get()] = place({0, 0, in->name, shape_str(in->value.shape()), true});
  std::vector<int> col(entries.size());
  for (size_t i = 0; i < entries.size(); i++) {
    col[i] = 1;
    for (const Var& in : entries[i].inputs)
      if (in->tape_index >= 0) col[i] = std::max(col[i], col[size_t(in->tape_index)] + 1);
    entry_box[i] = place({col[i], 0, fmt::format("#{} {}", i, entries[i].op),
                          entries[i].out->name + " " + shape_str(entries[i].out->value.shape()), false});
  }
  int cols = 0, rows = 0;
  for (auto& b : boxes) cols = std::max(cols, b.col + 1), rows = std::max(rows, b.row + 1);
  const int width = 2 * pad + cols * W + (cols - 1) * gap_x, height = 2 * top + rows * H + (rows - 1) * gap_y;
  auto x_of = [&](const Box& b) { return pad + b.col * (W + gap_x); };
  auto y_of = [&](const Box& b) { return top + b.row * (H + gap_y); };
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"monospace\" font-size=\"12\">\n"
      "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" "
      "orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"context-stroke\"/></marker></defs>\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n", width, height);
  for (size_t i = 0; i < entries.size(); i++) {
    const Box& to = boxes[size_t(entry_box[i])];
    const auto& ins = entries[i].inputs;
    for (size_t k = 0; k < ins.size(); k++) {
      const Box& from = boxes[size_t(ins[k]->tape_index >= 0 ? entry_box[size_t(ins[k]->tape_index)] : leaf_box[ins[k].get()])];
      int uses = 0, nth = 0;
      for (size_t m = 0; m < ins.size(); m++)
        if (ins[m].get() == ins[k].get()) nth += m < k, uses++;
      const int x1 = x_of(from) + W, y1 = y_of(from) + H / 2, x2 = x_of(to), y2 = y_of(to) + H / 2;
      const int bend = uses > 1 ? (nth == 0 ? -18 : 18) : 0;  // two arrows from one input: bent apart
      const char* colour = uses > 1 ? "#d62728" : "#555555";
      svg += fmt::format("<path d=\"M{},{} C{},{} {},{} {},{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" "
                         "marker-end=\"url(#arrow)\"/>\n", x1, y1, x1 + gap_x / 2, y1 + 2 * bend, x2 - gap_x / 2,
                         y2 + 2 * bend, x2, y2, colour);
      if (uses > 1)
        svg += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"{}\" text-anchor=\"middle\">operand {}</text>\n",
                           (x1 + x2) / 2, (y1 + y2) / 2 + 2 * bend + (bend < 0 ? -4 : 12), colour, k + 1);
    }
  }
  for (auto& b : boxes) {
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"{}\" fill=\"{}\" stroke=\"#333333\"/>\n",
                       x_of(b), y_of(b), W, H, b.leaf ? 0 : 8, b.leaf ? "#eef3fb" : "#fdf6e3");
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", x_of(b) + W / 2, y_of(b) + 18, xml_text(b.l1));
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", x_of(b) + W / 2, y_of(b) + 34, xml_text(b.l2));
  }
  return svg + "</svg>\n";
}

Var Tape::find(const std::string& name) const {
  for (auto it = entries.rbegin(); it != entries.rend(); ++it)
    if (it->out->name == name) return it->out;
  return nullptr;
}

double Tape::product_flops() const {
  double f = 0;
  for (auto& e : entries) {
    const Tensor& out = e.out->value;
    if (e.op == "matmul") {
      const Tensor& a = e.inputs[0]->value;
      const double K = double(a.numel()) / double(out.numel() / out.dim(-1));  // a holds batch·M·K values
      const double fwd = 2.0 * double(out.numel()) * K;
      const int grads = int(e.inputs[0]->requires_grad) + int(e.inputs[1]->requires_grad);
      f += fwd * (1 + grads);
    } else if (e.op == "linear") {
      const Tensor& w = e.inputs[1]->value;
      const double fwd = 2.0 * double(out.numel()) * double(w.dim(0));
      f += fwd * (1 + int(e.inputs[0]->requires_grad) + int(e.inputs[1]->requires_grad));
    } else if (e.op == "gram") {
      const Tensor& q = e.inputs[0]->value;
      const double fwd = double(out.numel()) * double(q.dim(-1));  // syrk: half of 2·N·N·K
      f += fwd + 2.0 * fwd;                                         // backward: (G+Gᵀ) Q, one full product
    }
  }
  return f;
}

}  // namespace attn

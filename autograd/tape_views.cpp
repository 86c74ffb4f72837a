// autograd/tape_views.cpp — the tape shown to people: one line per entry (dump, also callable from
// gdb), Graphviz text, and an SVG drawing laid out here with no tools needed.
#include <attnlab/autograd/tape.h>
#include <attnlab/core/kernels.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace attn {

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
    std::string v = e.out->value.defined() ? fmt::format("{:.4g}", l2_norm(e.out->value)) : "-";  // "-": released
    out += fmt::format("{:>4}  {:<14} {:<34} {:<32} {:<16} {:>10} {:>10}\n", i, e.op, e.out->name, ins,
                       shape_str(e.out->value.shape()), v, g);
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

}  // namespace attn

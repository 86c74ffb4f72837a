# gnuplot script for the report's plots: gnuplot plots.gp (run inside its directory)
set linetype 1 lc rgb '#1b9e77' lw 1.5 dt 1
set linetype 2 lc rgb '#d95f02' lw 1.5 dt 2
set linetype 3 lc rgb '#7570b3' lw 1.5 dt 3
set linetype 4 lc rgb '#e7298a' lw 1.5 dt 4
set linetype 5 lc rgb '#66a61e' lw 1.5 dt 5
set linetype 6 lc rgb '#e6ab02' lw 1.5 dt (8,4,2,4)
set linetype 7 lc rgb '#a6761d' lw 1.5 dt (2,6)
set linetype 8 lc rgb '#666666' lw 1.5 dt (12,4)
set linetype 9 lc rgb '#1f78b4' lw 1.5 dt (6,3,6,3,1,3)
set linetype 10 lc rgb '#b2182b' lw 1.5 dt (16,4,4,4)
set linetype 11 lc rgb '#000000' lw 1.5 dt (1,2)
set linetype 12 lc rgb '#80cdc1' lw 1.5 dt (10,2,2,2,2,2)
set terminal pngcairo noenhanced size 900,520 font 'sans,10'
set datafile separator ','
set key outside right
set grid
set output 'plots/valid_loss_by_step.png'
set title 'validation loss by step'
set xlabel 'step'
set ylabel 'valid loss'
plot 'plots/valid_loss_by_step.csv' index 0 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 1 notitle, 'plots/valid_loss_by_step.csv' index 0 using 1:2 with linespoints pt 7 ps 0.4 lt 1 title 'qk', 'plots/valid_loss_by_step.csv' index 1 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 2 notitle, 'plots/valid_loss_by_step.csv' index 1 using 1:2 with linespoints pt 7 ps 0.4 lt 2 title 'qq'
set output 'plots/valid_loss_late.png'
set title 'validation loss, second half of training'
set xlabel 'step'
set ylabel 'valid loss'
set xrange [1000:*]
plot 'plots/valid_loss_late.csv' index 0 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 1 notitle, 'plots/valid_loss_late.csv' index 0 using 1:2 with linespoints pt 7 ps 0.4 lt 1 title 'qk', 'plots/valid_loss_late.csv' index 1 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 2 notitle, 'plots/valid_loss_late.csv' index 1 using 1:2 with linespoints pt 7 ps 0.4 lt 2 title 'qq'
set xrange [*:*]
set output 'plots/valid_loss_diff.png'
set title 'validation loss minus qk’s (same seed)'
set xlabel 'step'
set ylabel 'difference in valid loss'
plot 'plots/valid_loss_diff.csv' index 0 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 2 notitle, 'plots/valid_loss_diff.csv' index 0 using 1:2 with linespoints pt 7 ps 0.4 lt 2 title 'qq', 0 with lines dt 2 lc 'black' notitle
set output 'plots/valid_loss_by_time.png'
set title 'validation loss by wall time'
set xlabel 'seconds'
set ylabel 'valid loss'
plot 'plots/valid_loss_by_time.csv' index 0 using 1:2 with linespoints pt 7 ps 0.4 lt 1 title 'qk', 'plots/valid_loss_by_time.csv' index 1 using 1:2 with linespoints pt 7 ps 0.4 lt 2 title 'qq'
set output 'plots/train_loss.png'
set title 'training loss'
set xlabel 'step'
set ylabel 'train loss'
plot 'plots/train_loss.csv' index 0 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 1 notitle, 'plots/train_loss.csv' index 0 using 1:2 with linespoints pt 7 ps 0.4 lt 1 title 'qk', 'plots/train_loss.csv' index 1 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 2 notitle, 'plots/train_loss.csv' index 1 using 1:2 with linespoints pt 7 ps 0.4 lt 2 title 'qq'
set output 'plots/entropy_enc_self.png'
set title 'Attention entropy (nats), enc self-attention, mean over layers, heads and query positions'
set xlabel 'step'
set ylabel 'entropy (nats)'
plot 'plots/entropy_enc_self.csv' index 0 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 1 notitle, 'plots/entropy_enc_self.csv' index 0 using 1:2 with linespoints pt 7 ps 0.4 lt 1 title 'qk', 'plots/entropy_enc_self.csv' index 1 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 2 notitle, 'plots/entropy_enc_self.csv' index 1 using 1:2 with linespoints pt 7 ps 0.4 lt 2 title 'qq'
set output 'plots/entropy_dec_self.png'
set title 'Attention entropy (nats), dec self-attention, mean over layers, heads and query positions'
set xlabel 'step'
set ylabel 'entropy (nats)'
plot 'plots/entropy_dec_self.csv' index 0 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 1 notitle, 'plots/entropy_dec_self.csv' index 0 using 1:2 with linespoints pt 7 ps 0.4 lt 1 title 'qk', 'plots/entropy_dec_self.csv' index 1 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 2 notitle, 'plots/entropy_dec_self.csv' index 1 using 1:2 with linespoints pt 7 ps 0.4 lt 2 title 'qq'
set output 'plots/entropy_cross.png'
set title 'Attention entropy (nats), cross-attention, mean over layers, heads and query positions'
set xlabel 'step'
set ylabel 'entropy (nats)'
plot 'plots/entropy_cross.csv' index 0 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 1 notitle, 'plots/entropy_cross.csv' index 0 using 1:2 with linespoints pt 7 ps 0.4 lt 1 title 'qk', 'plots/entropy_cross.csv' index 1 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 2 notitle, 'plots/entropy_cross.csv' index 1 using 1:2 with linespoints pt 7 ps 0.4 lt 2 title 'qq'
set output 'plots/diag_mass_enc_self.png'
set title 'Attention mass on the diagonal P(i,i), enc self-attention, mean over layers'
set xlabel 'step'
set ylabel 'P(i,i)'
plot 'plots/diag_mass_enc_self.csv' index 0 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 1 notitle, 'plots/diag_mass_enc_self.csv' index 0 using 1:2 with linespoints pt 7 ps 0.4 lt 1 title 'qk', 'plots/diag_mass_enc_self.csv' index 1 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 2 notitle, 'plots/diag_mass_enc_self.csv' index 1 using 1:2 with linespoints pt 7 ps 0.4 lt 2 title 'qq'
set output 'plots/diag_mass_dec_self.png'
set title 'Attention mass on the diagonal P(i,i), dec self-attention, mean over layers'
set xlabel 'step'
set ylabel 'P(i,i)'
plot 'plots/diag_mass_dec_self.csv' index 0 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 1 notitle, 'plots/diag_mass_dec_self.csv' index 0 using 1:2 with linespoints pt 7 ps 0.4 lt 1 title 'qk', 'plots/diag_mass_dec_self.csv' index 1 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 2 notitle, 'plots/diag_mass_dec_self.csv' index 1 using 1:2 with linespoints pt 7 ps 0.4 lt 2 title 'qq'
set output 'plots/wqk_asymmetry_qk.png'
set title '[qk] asymmetry of each layer’s W_q W_kᵀ: |A - Aᵀ| / |A| (QQᵀ forces 0)'
set xlabel 'step'
set ylabel 'asymmetry |A - Aᵀ| / |A|'
plot 'plots/wqk_asymmetry_qk.csv' index 0 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 1 notitle, 'plots/wqk_asymmetry_qk.csv' index 0 using 1:2 with linespoints pt 7 ps 0.4 lt 1 title 'dec.0.cross_attn', 'plots/wqk_asymmetry_qk.csv' index 1 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 2 notitle, 'plots/wqk_asymmetry_qk.csv' index 1 using 1:2 with linespoints pt 7 ps 0.4 lt 2 title 'dec.0.self_attn', 'plots/wqk_asymmetry_qk.csv' index 2 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 3 notitle, 'plots/wqk_asymmetry_qk.csv' index 2 using 1:2 with linespoints pt 7 ps 0.4 lt 3 title 'dec.1.cross_attn', 'plots/wqk_asymmetry_qk.csv' index 3 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 4 notitle, 'plots/wqk_asymmetry_qk.csv' index 3 using 1:2 with linespoints pt 7 ps 0.4 lt 4 title 'dec.1.self_attn', 'plots/wqk_asymmetry_qk.csv' index 4 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 5 notitle, 'plots/wqk_asymmetry_qk.csv' index 4 using 1:2 with linespoints pt 7 ps 0.4 lt 5 title 'enc.0.self_attn', 'plots/wqk_asymmetry_qk.csv' index 5 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 6 notitle, 'plots/wqk_asymmetry_qk.csv' index 5 using 1:2 with linespoints pt 7 ps 0.4 lt 6 title 'enc.1.self_attn', 1.4142135623730951 with lines dt 3 lw 2 lc 'black' title 'a random matrix (√2)'
set output 'plots/grad_wq_qk.png'
set title '[qk] gradient norm of W_q per layer (for qq sites: the shared W)'
set xlabel 'step'
set ylabel '|dL/dW_q|'
set logscale y
plot 'plots/grad_wq_qk.csv' index 0 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 1 notitle, 'plots/grad_wq_qk.csv' index 0 using 1:2 with linespoints pt 7 ps 0.4 lt 1 title 'dec.0.cross_attn', 'plots/grad_wq_qk.csv' index 1 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 2 notitle, 'plots/grad_wq_qk.csv' index 1 using 1:2 with linespoints pt 7 ps 0.4 lt 2 title 'dec.0.self_attn', 'plots/grad_wq_qk.csv' index 2 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 3 notitle, 'plots/grad_wq_qk.csv' index 2 using 1:2 with linespoints pt 7 ps 0.4 lt 3 title 'dec.1.cross_attn', 'plots/grad_wq_qk.csv' index 3 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 4 notitle, 'plots/grad_wq_qk.csv' index 3 using 1:2 with linespoints pt 7 ps 0.4 lt 4 title 'dec.1.self_attn', 'plots/grad_wq_qk.csv' index 4 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 5 notitle, 'plots/grad_wq_qk.csv' index 4 using 1:2 with linespoints pt 7 ps 0.4 lt 5 title 'enc.0.self_attn', 'plots/grad_wq_qk.csv' index 5 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 6 notitle, 'plots/grad_wq_qk.csv' index 5 using 1:2 with linespoints pt 7 ps 0.4 lt 6 title 'enc.1.self_attn'
unset logscale y
set output 'plots/grad_wk_qk.png'
set title '[qk] gradient norm of W_k per layer'
set xlabel 'step'
set ylabel '|dL/dW_k|'
set logscale y
plot 'plots/grad_wk_qk.csv' index 0 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 1 notitle, 'plots/grad_wk_qk.csv' index 0 using 1:2 with linespoints pt 7 ps 0.4 lt 1 title 'dec.0.cross_attn', 'plots/grad_wk_qk.csv' index 1 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 2 notitle, 'plots/grad_wk_qk.csv' index 1 using 1:2 with linespoints pt 7 ps 0.4 lt 2 title 'dec.0.self_attn', 'plots/grad_wk_qk.csv' index 2 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 3 notitle, 'plots/grad_wk_qk.csv' index 2 using 1:2 with linespoints pt 7 ps 0.4 lt 3 title 'dec.1.cross_attn', 'plots/grad_wk_qk.csv' index 3 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 4 notitle, 'plots/grad_wk_qk.csv' index 3 using 1:2 with linespoints pt 7 ps 0.4 lt 4 title 'dec.1.self_attn', 'plots/grad_wk_qk.csv' index 4 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 5 notitle, 'plots/grad_wk_qk.csv' index 4 using 1:2 with linespoints pt 7 ps 0.4 lt 5 title 'enc.0.self_attn', 'plots/grad_wk_qk.csv' index 5 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 6 notitle, 'plots/grad_wk_qk.csv' index 5 using 1:2 with linespoints pt 7 ps 0.4 lt 6 title 'enc.1.self_attn'
unset logscale y
set output 'plots/wqk_asymmetry_qq.png'
set title '[qq] asymmetry of each layer’s W_q W_kᵀ: |A - Aᵀ| / |A| (QQᵀ forces 0)'
set xlabel 'step'
set ylabel 'asymmetry |A - Aᵀ| / |A|'
plot 'plots/wqk_asymmetry_qq.csv' index 0 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 1 notitle, 'plots/wqk_asymmetry_qq.csv' index 0 using 1:2 with linespoints pt 7 ps 0.4 lt 1 title 'dec.0.cross_attn', 'plots/wqk_asymmetry_qq.csv' index 1 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 2 notitle, 'plots/wqk_asymmetry_qq.csv' index 1 using 1:2 with linespoints pt 7 ps 0.4 lt 2 title 'dec.1.cross_attn', 1.4142135623730951 with lines dt 3 lw 2 lc 'black' title 'a random matrix (√2)'
set output 'plots/grad_wq_qq.png'
set title '[qq] gradient norm of W_q per layer (for qq sites: the shared W)'
set xlabel 'step'
set ylabel '|dL/dW_q|'
set logscale y
plot 'plots/grad_wq_qq.csv' index 0 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 1 notitle, 'plots/grad_wq_qq.csv' index 0 using 1:2 with linespoints pt 7 ps 0.4 lt 1 title 'dec.0.cross_attn', 'plots/grad_wq_qq.csv' index 1 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 2 notitle, 'plots/grad_wq_qq.csv' index 1 using 1:2 with linespoints pt 7 ps 0.4 lt 2 title 'dec.0.self_attn', 'plots/grad_wq_qq.csv' index 2 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 3 notitle, 'plots/grad_wq_qq.csv' index 2 using 1:2 with linespoints pt 7 ps 0.4 lt 3 title 'dec.1.cross_attn', 'plots/grad_wq_qq.csv' index 3 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 4 notitle, 'plots/grad_wq_qq.csv' index 3 using 1:2 with linespoints pt 7 ps 0.4 lt 4 title 'dec.1.self_attn', 'plots/grad_wq_qq.csv' index 4 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 5 notitle, 'plots/grad_wq_qq.csv' index 4 using 1:2 with linespoints pt 7 ps 0.4 lt 5 title 'enc.0.self_attn', 'plots/grad_wq_qq.csv' index 5 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 6 notitle, 'plots/grad_wq_qq.csv' index 5 using 1:2 with linespoints pt 7 ps 0.4 lt 6 title 'enc.1.self_attn'
unset logscale y
set output 'plots/grad_wk_qq.png'
set title '[qq] gradient norm of W_k per layer'
set xlabel 'step'
set ylabel '|dL/dW_k|'
set logscale y
plot 'plots/grad_wk_qq.csv' index 0 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 1 notitle, 'plots/grad_wk_qq.csv' index 0 using 1:2 with linespoints pt 7 ps 0.4 lt 1 title 'dec.0.cross_attn', 'plots/grad_wk_qq.csv' index 1 using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt 2 notitle, 'plots/grad_wk_qq.csv' index 1 using 1:2 with linespoints pt 7 ps 0.4 lt 2 title 'dec.1.cross_attn'
unset logscale y

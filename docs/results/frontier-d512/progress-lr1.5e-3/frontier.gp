# gnuplot script for the frontier plots: gnuplot frontier.gp (run inside its directory)
set linetype 1 lc rgb '#1b9e77' lw 2 dt 1 pt 1 ps 1.1
set linetype 2 lc rgb '#d95f02' lw 2 dt 2 pt 2 ps 1.1
set linetype 3 lc rgb '#7570b3' lw 2 dt 3 pt 3 ps 1.1
set linetype 4 lc rgb '#e7298a' lw 2 dt 4 pt 4 ps 1.1
set linetype 5 lc rgb '#66a61e' lw 2 dt 5 pt 5 ps 1.1
set linetype 6 lc rgb '#e6ab02' lw 2 dt (8,4,2,4) pt 6 ps 1.1
set linetype 7 lc rgb '#a6761d' lw 2 dt (2,6) pt 7 ps 1.1
set linetype 8 lc rgb '#666666' lw 2 dt (12,4) pt 1 ps 1.1
set linetype 9 lc rgb '#1f78b4' lw 2 dt (6,3,6,3,1,3) pt 2 ps 1.1
set linetype 10 lc rgb '#b2182b' lw 2 dt (16,4,4,4) pt 3 ps 1.1
set linetype 11 lc rgb '#000000' lw 2 dt (1,2) pt 4 ps 1.1
set linetype 12 lc rgb '#80cdc1' lw 2 dt (10,2,2,2,2,2) pt 5 ps 1.1
set terminal pngcairo noenhanced size 900,560 font 'sans,11'
set datafile separator ','
set key outside right
set grid
set output 'plots/loss_vs_params.png'
set title 'validation loss against parameters'
set xlabel 'parameters (log scale)'
set ylabel 'validation loss (nats per target token)'
set logscale x 2
set format x '%.1s%c'
plot 'plots/loss_vs_params.csv' index 0 using 1:2:3 with yerrorlines lt 1 title 'qk', 'plots/loss_vs_params.csv' index 1 using 1:2:3 with yerrorlines lt 2 title 'qq'
unset logscale x
set format x '% h'
set output 'plots/bleu_vs_params.png'
set title 'test BLEU against parameters'
set xlabel 'parameters (log scale)'
set ylabel 'test BLEU'
set logscale x 2
set format x '%.1s%c'
plot 'plots/bleu_vs_params.csv' index 0 using 1:2:3 with yerrorlines lt 1 title 'qk', 'plots/bleu_vs_params.csv' index 1 using 1:2:3 with yerrorlines lt 2 title 'qq'
unset logscale x
set format x '% h'
set output 'plots/loss_vs_flops.png'
set title 'validation loss against operations'
set xlabel 'MFLOP per target token (log scale)'
set ylabel 'validation loss (nats per target token)'
set logscale x 2
set format x '%.1s%c'
plot 'plots/loss_vs_flops.csv' index 0 using 1:2:3 with yerrorlines lt 1 title 'qk', 'plots/loss_vs_flops.csv' index 1 using 1:2:3 with yerrorlines lt 2 title 'qq'
unset logscale x
set format x '% h'
set output 'plots/frontier_distance.png'
set title 'validation loss minus the frontier of qk'
set xlabel 'parameters (log scale)'
set ylabel 'difference in validation loss (nats)'
set logscale x 2
set format x '%.1s%c'
plot 'plots/frontier_distance.csv' index 0 using 1:2:3 with yerrorlines lt 2 title 'qq', 0 with lines lc rgb 'black' dt 1 lw 1 notitle
unset logscale x
set format x '% h'
set output 'plots/diag_mass_enc_by_width.png'
set title 'diagonal attention mass, encoder self-attention'
set xlabel 'd_model (log scale)'
set ylabel 'P(i,i), mean over query positions'
set logscale x 2
set format x '%.1s%c'
plot 'plots/diag_mass_enc_by_width.csv' index 0 using 1:2:3 with yerrorlines lt 1 title 'qk', 'plots/diag_mass_enc_by_width.csv' index 1 using 1:2:3 with yerrorlines lt 2 title 'qq'
unset logscale x
set format x '% h'
set output 'plots/diag_mass_dec_by_width.png'
set title 'diagonal attention mass, decoder self-attention'
set xlabel 'd_model (log scale)'
set ylabel 'P(i,i), mean over query positions'
set logscale x 2
set format x '%.1s%c'
plot 'plots/diag_mass_dec_by_width.csv' index 0 using 1:2:3 with yerrorlines lt 1 title 'qk', 'plots/diag_mass_dec_by_width.csv' index 1 using 1:2:3 with yerrorlines lt 2 title 'qq'
unset logscale x
set format x '% h'
set xrange [*:*] reverse
set output 'plots/progress_qq.png'
set title 'qq minus qk at the same step, by width'
set xlabel 'validation loss of qk at that step (training runs left to right)'
set ylabel 'difference in validation loss (nats)'
plot 'plots/progress_qq.csv' index 0 using 1:2:3 with yerrorlines lt 2 title 'd_model 64', 'plots/progress_qq.csv' index 1 using 1:2:3 with yerrorlines lt 3 title 'd_model 128', 'plots/progress_qq.csv' index 2 using 1:2:3 with yerrorlines lt 4 title 'd_model 256', 'plots/progress_qq.csv' index 3 using 1:2:3 with yerrorlines lt 5 title 'd_model 512', 0 with lines lc rgb 'black' dt 1 lw 1 notitle
set xrange [*:*] noreverse

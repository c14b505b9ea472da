"""The course's exercises: a stable name, a title, points, a nudge and a hint for each one.

A check cell names its exercise (`check("03.eps_loss", ...)`); the texts live here, not in the
visible cell, so a learner sees them only when asking: the first failed attempt prints the nudge,
`hint("03.eps_loss")` or a second failed attempt prints the hint. Nudges point at the idea, hints
at the steps; neither spells out the solution's code (tests/test_exercises.py checks that no line
of any solution appears in any of these texts).

The name is "NN.slug", NN the notebook's number. Points are the exercise's weight in
`dit-mini course grade` and in the nbgrader metadata of its check cell (kept equal by a test).

Used by `dit_mini.course.exercises` (check, hint) and `dit_mini.course.notebooks` (metadata).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Exercise", "EXERCISES", "exercise", "notebook_exercises"]


@dataclass(frozen=True)
class Exercise:
    """One exercise of a course notebook: what the checks call it and how they help."""

    name: str
    title: str
    points: int
    nudge: str
    hint: str


_TABLE = [
    # 00 bonfire
    ("00.to_model_range", "pixels to the model's range", 1,
     "two things change: the value range and the position of the channel axis.",
     "map 0 to -1 and 255 to +1 with one multiply and one subtract (255 / 2 is the scale); "
     "then reorder the axes so that channels come right after the batch axis."),
    ("00.class_accuracy", "class accuracy of the boss", 1,
     "a guess per image is the class whose logit is largest.",
     "take the index of the largest logit in every row, compare it with the labels, and "
     "average the matches as floats; return a Python number."),
    # 01 fog
    ("01.alpha_bar", "alpha_bar from betas", 1,
     "alpha_bar_t is what survives after every step up to t: a running product.",
     "each step keeps a fraction 1 - beta of the signal; torch has a cumulative product "
     "(not a cumulative sum) along dimension 0."),
    ("01.q_sample", "q_sample", 1,
     "one jump: a weighted sum of the clean image and the noise, weights from alpha_bar[t].",
     "pick alpha_bar at each image's own t, give it shape (B, 1, 1, 1) so it broadcasts over "
     "channels and pixels, and use square roots of alpha_bar and of 1 - alpha_bar as weights."),
    ("01.snr", "SNR in decibels and the first step below 0 dB", 1,
     "SNR is signal power over noise power; 0 dB means they are equal.",
     "the signal power at step t is alpha_bar and the noise power 1 - alpha_bar; decibels are "
     "ten times the base-10 logarithm; the first step below 0 dB is the first index where the "
     "dB value is negative (as a Python int)."),
    ("01.cosine_midpoint", "SNR of the cosine schedule at the midpoint", 1,
     "put t / T = 1/2 into f and divide by f(0); with s = 0 the angle is exactly pi / 4.",
     "the midpoint angle is (1/2 + s) / (1 + s) times pi / 2, just past pi / 4 for s > 0, so "
     "alpha_bar is a little under one half there (after dividing by f(0), the squared cosine of "
     "s / (1 + s) times pi / 2); the SNR is alpha_bar / (1 - alpha_bar), and decibels are ten "
     "times its base-10 logarithm (not twenty: it is a power ratio)."),
    # 02 nameless king
    ("02.reparameterize", "reparameterize", 1,
     "write the sample as a function of mu and sigma with the randomness kept outside.",
     "shift the standard noise by the mean after stretching it by the spread; plain "
     "arithmetic keeps both parameters in the autograd graph."),
    ("02.forward_chain", "one step of the chain, and 300 of them", 2,
     "one step keeps part of the previous image and adds fresh noise; the chain repeats it.",
     "one step: sqrt(1 - beta) of the previous image plus sqrt(beta) of new unit noise. The "
     "chain: loop over the betas as floats, draw new noise from the generator at every step "
     "with the image's shape and dtype, and feed each result into the next step."),
    ("02.gradients_by_hand", "gradients by hand", 1,
     "differentiate the mean squared residual by the chain rule, once for mu, once for sigma.",
     "the derivative of a square is twice the residual; the residual moves 1 for 1 with mu and "
     "by eps with sigma; average over the N samples."),
    # 03 clearing the fog
    ("03.eps_loss", "eps-prediction loss", 2,
     "noise the clean batch to each image's own step, ask the model for the noise, compare.",
     "build x_t as in notebook 01 (alpha_bar at t, broadcast per image); the model is called "
     "with x_t, t and y; the loss is the mean of the squared difference between its output "
     "and the noise that was added."),
    ("03.ddpm_posterior", "the DDPM posterior, derived", 2,
     "both factors are Gaussians in x_{t-1}: add their precisions, average their centres.",
     "the step factor has precision alpha_t / beta_t and centre x_t / sqrt(alpha_t); the jump "
     "factor precision 1 / (1 - alpha_bar_{t-1}) and centre sqrt(alpha_bar_{t-1}) x0. The "
     "variance is one over the summed precision, beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) "
     "(not beta_t itself); the mean weighs x0 by sqrt(alpha_bar_{t-1}) beta_t and x_t by "
     "sqrt(alpha_t) (1 - alpha_bar_{t-1}), both over 1 - alpha_bar_t. At t = 0 use "
     "alpha_bar_{-1} = 1: the mean is x0 and the variance 0."),
    ("03.ddim_jump", "one DDIM jump", 2,
     "guess the clean image from x_t and eps, then fog the guess again to the earlier level.",
     "invert the forward jump at step t to get x0_hat; rebuild a noisy image at t_prev from "
     "x0_hat and the same eps; a t_prev of -1 means fully clean, so its alpha_bar is one."),
    ("03.ddim_timesteps", "DDIM timesteps (trailing)", 1,
     "trailing spacing starts at the last step and walks down in equal (fractional) strides.",
     "the stride is T / S as a float; the i-th step is T - 1 minus i strides, rounded to the "
     "nearest int; there are exactly S of them."),
    ("03.flow_loss", "flow-matching loss", 2,
     "flow matching walks a straight road: mix image and noise by t, predict the direction.",
     "mix with the weights (1 - t) and t, each reshaped to one value per image; the model hears "
     "the time in the 0..1000 range; the target is the velocity, noise minus image, and the loss "
     "its mean squared error."),
    ("03.euler_step", "one Euler step", 1,
     "an Euler step moves along the velocity the model gives here, for the length of the step.",
     "move from x by (t_next - t) times the velocity the model gives at (x, t); the model wants "
     "a tensor of B times, each t times FLOW_TIME_SCALE."),
    ("03.marginal_velocity", "the marginal velocity of flow matching", 2,
     "the answer at (x, t) is an average over the data points of each road's velocity.",
     "on the road from data point i, eps = (x - (1 - t) x_i) / t, so its velocity eps - x_i is "
     "(x - x_i) / t; the weight of road i is proportional to a Gaussian of mean (1 - t) x_i and "
     "variance t^2 evaluated at x; normalise the weights over i with a softmax of the log "
     "weights (plain exponentials underflow at small t) and sum the weighted velocities."),
    # 04 cartographer
    ("04.contraction_shapes", "contraction shapes", 1,
     "every level down halves the height and width; the channels come from the config.",
     "level i has config.widths[i] channels and size divided by 2 to the power i on each "
     "side; return one (C, H, W) tuple per level."),
    ("04.merge_skip", "merge_skip rebuilds the climb", 1,
     "the skip and the map from below are stacked, not added.",
     "concatenate along the channel axis (dimension 1 of (B, C, H, W)), the map from below "
     "first and the skip second."),
    ("04.receptive_field", "receptive field", 1,
     "each conv widens the view by (kernel - 1) steps of the current input-pixel spacing.",
     "keep two numbers, the field size and the spacing (jump) between neighbouring outputs "
     "in input pixels; each layer adds (kernel - 1) jumps to the size, then multiplies the "
     "jump by its stride."),
    # 05 mystic lens
    ("05.patchify", "patchify", 2,
     "split each image axis into (grid position, position inside the patch), then reorder.",
     "reshape H to (H/p, p) and W to (W/p, p); permute so the two grid axes come right after "
     "the batch and (row in patch, column in patch, channel) come last; flatten to (B, L, "
     "p*p*C). A non-square image must work too."),
    ("05.context_window", "context window", 1,
     "each head of each layer keeps an L x L matrix of attention weights.",
     "L is the number of patches; entries = depth times heads times L squared; float32 is 4 "
     "bytes and 1 MB is 1e6 bytes here."),
    ("05.sincos", "sin-cos position embedding", 1,
     "half the width holds sines, half cosines, of the position times geometric frequencies.",
     "frequencies are 1 / 10000 to the power k / (dim / 2) for k below dim / 2; multiply "
     "positions (as a column) by frequencies (as a row); put all sines first, then all cosines "
     "(concatenated, not interleaved), in float64."),
    # 06 whispers
    ("06.attention_weights", "attention weights", 1,
     "scores are dot products of queries with keys, scaled, then turned into probabilities.",
     "multiply q by k with its last two axes swapped, divide by the square root of the key "
     "width, and take a softmax over the keys (the last axis)."),
    ("06.heads", "split and merge the heads", 1,
     "splitting cuts the channel axis into (heads, width per head) and moves heads forward.",
     "split: view the last axis as (heads, D / heads), then swap the heads axis with the token "
     "axis; merge does the same backwards, so that merging a split gives the tokens back "
     "channel for channel (einops.rearrange or reshape and transpose both work)."),
    ("06.attention_distance", "mean attention distance", 2,
     "weight the distance between every pair of patches by how much one attends to the other.",
     "give every token its (row, column) on the grid, row-major; compute all pairwise "
     "Euclidean distances (L, L); multiply by the weights, sum over the keys, then average "
     "over the queries."),
    # 07 legendary gear
    ("07.modulate", "modulate", 1,
     "shift and scale hold one vector per image; the tokens need an axis to broadcast over.",
     "insert a token axis into shift and scale (B, D) -> (B, 1, D); scale multiplies as "
     "(1 + scale), shift is added after."),
    ("07.dit_block", "the adaLN-Zero block", 2,
     "the conditioning vector gives six vectors: shift, scale and gate for each of the two "
     "branches.",
     "split block.adaLN_modulation(c) into six chunks along dimension 1; each branch is "
     "norm, modulate, attention (or MLP), times its gate, added back to x; every per-image "
     "vector needs a token axis. At initialisation the gates are zero."),
    ("07.timestep_embedding", "timestep embedding", 1,
     "like the position embedding of notebook 05, but of the time, cosines first.",
     "frequencies fall geometrically from 1 to nearly 1 / 10000 over dim / 2 values; take t "
     "times every frequency; concatenate the cosines, then the sines, along dimension 1."),
    ("07.first_gradients", "who learns first under adaLN-Zero", 1,
     "the output is W times something plus b, and W starts at zero.",
     "d out / d W is the layer's input, which is not zero, and d out / d b is one; everything "
     "before that layer reaches the output only through W (so its gradient is W transposed "
     "times the upstream gradient: zero), and every block's branches are multiplied by zero "
     "gates. Exactly two parameter tensors of the final layer learn on the first step."),
    # 08 summon signs
    ("08.label_dropout", "label dropout", 1,
     "each label is replaced by the null class with probability p, independently.",
     "draw one uniform number per label from the generator, mark those below p, and pick the "
     "null class where marked and the label elsewhere (torch.where)."),
    ("08.cfg_bayes", "guidance from Bayes' rule", 2,
     "take the log of p(x) p(y | x)^w and the gradient in x; then replace log p(y | x) by Bayes.",
     "log p(y | x) = log p(x | y) + log p(y) - log p(x); log p(y) has no gradient in x, so the "
     "gradient of log p(y | x) is the conditional score minus the unconditional one; the "
     "answer is the unconditional score plus w times that difference (w = 1 gives the "
     "conditional score back, w = 0 the unconditional one)."),
    ("08.guidance", "the guided combination", 1,
     "guidance starts from the unconditional prediction and walks towards the conditional one.",
     "move from uncond along the direction (cond - uncond) by the guidance scale; at scale 1 "
     "you land on the conditional prediction, at 0 on the unconditional one."),
    ("08.diversity", "within-class diversity", 2,
     "average the distance between pairs of samples of the same class, then over classes.",
     "for each class with at least two samples, take all pairwise distances of its features "
     "(torch.cdist), sum them and divide by n (n - 1) pairs; average those class means."),
    # 09 DPS
    ("09.block_gflops", "Gflops of one DiT block", 2,
     "add four bills: the projections, the attention products, the MLP and adaLN.",
     "projections: Q, K, V and output, each L D^2; attention: 2 L^2 D; MLP: two layers of L "
     "D times the hidden width int(D * mlp_ratio); adaLN: 6 D^2 once per image; all in "
     "billions."),
    ("09.sampling_bill", "the bill of a finished sample", 1,
     "a sample costs one network pass per sampling step, or more; the decoder comes once.",
     "count the passes: one per step, two when guidance asks the model with and without the "
     "class; multiply by the Gflops of one pass; add the decoder's Gflops once per sample, not "
     "once per step."),
    ("09.halve_steps", "predict what half the steps do to FID", 1,
     "FID is a distance, so the ratio is positive; 1 means no change.",
     "notebook 03: Euler is exact on a straight road and the boss's roads are nearly straight; "
     "its class accuracy stopped rising after about 4 steps. Write one number between 0.6 and "
     "3: FID at 4 steps divided by FID at 8."),
    # 10 dream factory
    ("10.latent_shape", "latent shape, compression and token ratio", 1,
     "every encoder level but the last halves the image's height and width.",
     "the latent has latent_channels channels on a grid of input_size / f per side, f two to "
     "the power (levels - 1); compression counts numbers in an image over numbers in a "
     "latent; the token ratio compares patch-2 token counts of pixels and latents."),
    ("10.kl", "KL of a diagonal Gaussian", 1,
     "the KL to a standard normal is zero exactly when mean is 0 and logvar is 0.",
     "per number: half of (mean squared + variance - 1 - logvar), with variance = exp(logvar); "
     "no sum, keep the shape."),
    ("10.reparameterize", "the reparameterized draw", 1,
     "the same trick as in notebook 02: mean plus spread times noise.",
     "the spread is the exponential of half the log-variance; draw eps once from the "
     "generator with the mean's shape and dtype."),
    ("10.kl_two_gaussians", "KL between two Gaussians", 1,
     "expand log p1 - log p2 and take each term's expectation under p1.",
     "the log-normaliser terms give half of (logvar2 - logvar1); the quadratic term of p1 "
     "averages to one half; that of p2 to (sigma1^2 + (mu1 - mu2)^2) / (2 sigma2^2). Collect "
     "them: half of (sigma1^2 / sigma2^2 + (mu1 - mu2)^2 / sigma2^2 - 1 - log of the variance "
     "ratio); it is not symmetric, and with mu2 = 0 and logvar2 = 0 it is exercise 2's KL."),
    # 11 forge
    ("11.frechet_1d", "Frechet distance of two 1-D Gaussians", 1,
     "two gaps add up: between the means and between the spreads.",
     "square the difference of the means and square the difference of the standard "
     "deviations; return their sum as a float."),
    ("11.latent_scale", "latent scale", 1,
     "the scale makes the latents of real images have unit standard deviation.",
     "encode the images without gradients, take the posterior means, and return one over "
     "their standard deviation over all numbers, as a float."),
    ("11.smelt_finish", "smelt and finish", 1,
     "smelting encodes and scales; finishing undoes the scale and decodes.",
     "smelt: the posterior mean of the encoder times vae.latent_scale; finish: divide by the "
     "same scale before the decoder; no gradients needed."),
    # 12 fidelity
    ("12.gaussian_fit", "Gaussian fit", 1,
     "a mean vector and a covariance matrix, the unbiased one.",
     "work in float64; subtract the mean from every row, then the centred matrix transposed "
     "times itself, divided by N - 1."),
    ("12.frechet", "Frechet distance", 2,
     "a mean term plus a covariance term; the matrix square root is the hard part.",
     "squared distance of the means plus the traces of both covariances minus twice the "
     "trace of the square root of their product; that trace is the sum of the square roots "
     "of the product's eigenvalues (take real parts, clamp below at zero)."),
    ("12.kid", "unbiased KID estimate", 2,
     "MMD squared: mean kernel within each set plus within the other minus twice across.",
     "kernel (a.b / d + 1) cubed, in float64; the within-set means leave the diagonal out "
     "(divide by m (m - 1)); the cross term keeps every pair."),
    # 13 mastering the art
    ("13.tokenize", "caption tokenizer", 1,
     "every word has a fixed id in the vocabulary; the rest of the row is padding.",
     "lower-case and split each caption into words, look each word up in VOCAB, fill a long "
     "tensor of zeros (the pad id) of shape (N, length) row by row."),
    ("13.tubelets", "tubelet patchify", 2,
     "patchify of notebook 05, with a third axis: time is cut into blocks of pt frames.",
     "split T into (T/pt, pt), H into (H/p, p) and W into (W/p, p); tokens run over (time "
     "block, row, column), each holding (frame, row in patch, column in patch, channel)."),
    ("13.price_of_time", "the price of time", 1,
     "one token per tubelet; one frame alone has (size / p)^2 tokens.",
     "the clip has frames / pt blocks of (size / p)^2 tubelets each; the token ratio is "
     "therefore frames / pt (not frames); attention compares every token with every token, so "
     "its work grows with the square of the token count: the square of the token ratio."),
    # 14 new game plus
    ("14.embeddings", "timestep and label embeddings", 2,
     "a time becomes a vector of sines and cosines; a label becomes a row of a table.",
     "frequencies fall geometrically from 1 to about 1/max_period over dim/2 columns, all "
     "cosines first, then all sines; the timestep embedder is an nn.Sequential called mlp "
     "(Linear to the width, SiLU, Linear) fed that vector; the label embedder is one "
     "nn.Embedding called embedding_table with one row more than there are classes."),
    ("14.patches", "patchify, unpatchify and the patch embedding", 2,
     "cut the image into a grid of p x p squares and lay them out as a sequence.",
     "split H and W into (grid, p) pairs, move both grid axes forward and the channels last; "
     "undo it step by step for unpatchify; the patch embedding is a Conv2d called proj whose "
     "kernel size and stride are the patch size, its tokens row-major, shape (B, L, D)."),
    ("14.positions", "2-D position embedding", 1,
     "each token's position is two numbers, its column and its row: embed each in 1-D.",
     "two 1-D sin-cos embeddings of width dim/2 side by side: first of the column index, then of "
     "the row index of each token, tokens in row-major order."),
    ("14.attention", "multi-head self-attention", 2,
     "every token asks every other token a question; each head asks with its own channels.",
     "q, k and v are the three thirds of qkv's output; inside each third, head h owns a "
     "contiguous slice of d channels; scale the dot products by one over the square root of d, "
     "softmax over the keys, then merge the heads and project."),
    ("14.block", "modulate and the adaLN-Zero block", 2,
     "the condition turns into a shift, a scale and a gate for each of the two branches.",
     "modulate: shift and scale hold one vector per image, so give them a token axis; the block "
     "splits its modulation output into six chunks (shift, scale, gate for attention, then for "
     "the MLP); zero the modulation's last linear layer so that every gate starts at 0."),
    ("14.final_layer", "the final layer", 1,
     "one last modulated LayerNorm, then a linear map from each token to its patch's pixels.",
     "shift first, then scale, from a SiLU and a Linear(D, 2D); then one Linear to p*p*C values; "
     "both the modulation and the output layer start at zero."),
    ("14.mydit", "MyDiT, loaded with the boss's weights", 3,
     "assemble the pieces in the order the data flows, with the attribute names of the table.",
     "embed the patches, add the positions, add the time and label vectors into one condition, "
     "run the blocks, the final layer, then unpatchify; the attribute names must be the "
     "reference layout's so that strict loading matches every key."),
    ("14.flow_loss", "logit-normal times and the flow-matching loss", 2,
     "draw times that favour the middle, then the straight-road loss of notebook 03.",
     "one standard normal number per image from the generator, squashed into (0, 1) by a "
     "sigmoid; give t a (B, 1, 1, 1) shape to mix; the model hears t times 1000; the target is "
     "noise minus relic."),
    ("14.train_step", "the EMA update and one training step", 2,
     "one step: a batch, its noise, the loss, a clipped gradient step, then the moving average.",
     "EMA in place and without gradients, keeping decay of the old weight and 1 - decay of the "
     "new one, buffers copied; the draws come in the order labels, times, noise from the one "
     "generator; clip the gradient norm before the optimizer step; update the EMA after it."),
    ("14.train_loop", "the training loop", 2,
     "repeat the step with a warm-up of the learning rate, until the steps or the time run out.",
     "set the learning rate to lr times min(1, (s + 1) / warmup) before each step; draw a fresh "
     "random batch each step; call on_step(s, loss) after it; stop when the seconds are spent."),
    ("14.sampler", "the guided Euler sampler", 2,
     "start from pure noise at t = 1 and take equal Euler steps to 0 along the guided velocity.",
     "steps of size -1/steps from t = 1; the model hears t times 1000; the guided velocity is the "
     "unconditional one plus w times the difference between conditional and unconditional."),
    ("14.quiz_1", "question 1: the gates", 1,
     "think of what a branch adds when its gate is zero.",
     "a gate of zero keeps only the residual; a zero output layer makes the prediction 0."),
    ("14.quiz_2", "question 2: one straight step", 1,
     "notebook 03: what does Euler do on a path that is a straight line?",
     "Euler follows a straight line exactly, so a perfect velocity needs a single step."),
    ("14.quiz_3", "question 3: guidance", 1,
     "notebook 08: what does classifier-free guidance combine?",
     "guidance needs both predictions, with and without the label, from one network."),
]  # fmt: skip

EXERCISES: dict[str, Exercise] = {row[0]: Exercise(*row) for row in _TABLE}


def exercise(name: str) -> Exercise:
    """The registered exercise `name`, or a ValueError listing the notebook's exercises."""
    if name in EXERCISES:
        return EXERCISES[name]
    same = [n for n in EXERCISES if n.split(".")[0] == name.split(".")[0]]
    known = ", ".join(same or list(EXERCISES)[:5] + ["..."])
    raise ValueError(f"no exercise named {name!r}; known: {known}")


def notebook_exercises(number: str) -> list[Exercise]:
    """The registered exercises of notebook `number` ("03"), in order."""
    return [e for n, e in EXERCISES.items() if n.split(".")[0] == number]

"""Constants shared by the MMseqs2 modules: the denominators and sequence types we
accept, the MMseqs2 options they map to, and the numeric slack that keeps MMseqs2's
single-precision filters looser than our exact checks."""

DENOMINATORS = ("shorter", "longer", "alignment")
NUCLEOTIDE_TYPES = ("dna", "rna", "nucleotide")
SEQUENCE_TYPES = ("protein", *NUCLEOTIDE_TYPES)
# MMseqs2 --seq-id-mode codes for our denominators.
SEQ_ID_MODE = {"alignment": "0", "shorter": "1", "longer": "2"}
# Most sensitive k-mer prefilter, used only when the caller turns exhaustive off.
PREFILTER_SENSITIVITY = 7.5
PREFILTER_MAX_SEQS = 10000
# Nucleotide prefilter k-mer length. MMseqs2's own choice, 15, builds a 4^15-entry index
# (8.5 GB resident at any data size) and missed 11 of 757 planted DNA pairs at >= 0.8
# identity; 13 needs 0.6 GB and missed 1, in a tenth of the time
# (bench/prefilter_sensitivity.py; docs/benchmarks.md, issue 20).
NUCLEOTIDE_KMER_LENGTH = 13
# Floating-point slack so MMseqs2's own (single precision) filters never drop a
# pair our exact double-precision check would keep.
SLACK = 1e-4
# The 21 letters of MMseqs2's amino-acid alphabet (X = anything else).
MMSEQS_AMINO_ACIDS = "ARNDCQEGHILKMFPSTWYVX"
COMPLEMENT = str.maketrans("ACGTRYKMBVDH", "TGCAYRMKVBHD")
# qaln/taln (aligned sequences with gaps) let us count identical columns exactly:
# convertalis' own nident is rounded from the identity MMseqs2 computed with
# --seq-id-mode, which is not the alignment-length identity for modes 1 and 2.
ALIGNMENT_FIELDS = "query,target,qlen,tlen,alnlen,qstart,qend,tstart,tend,qaln,taln"
PAIR_COLUMNS = ["query", "target", "identity"]
# Queries per block of the all-pairs LCS bound (block x N int32 matrix in memory).
CANDIDATE_BLOCK = 1000
# Prefilter searches with co-optimal identity re-align the pairs MMseqs2 reports from
# this far below the threshold (exhaustive searches score every candidate exactly).
CO_OPTIMAL_MARGIN = 0.1

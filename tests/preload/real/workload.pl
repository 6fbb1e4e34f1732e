# workload.pl: a Perl workload for run-real-programs.sh: hashes, arrays, regexes, string
# building, sprintf, sort, references and interpreter threads. Deterministic output (hash keys
# are always sorted).
use strict;
use warnings;
use threads;

# Interpreter threads first, while the interpreter they clone is small: each builds a hash.
my @workers = map {
    my $n = $_;
    threads->create(sub {
        my %t;
        $t{"$n-$_"} = "y" x ($_ % 64) for 1 .. 50_000;
        my $len = 0;
        $len += length $t{$_} for keys %t;
        return $len;
    });
} 1 .. 4;
print "threads: ", join(",", map { $_->join } @workers), "\n";

my %h;
for my $i (0 .. 199_999) {
    $h{"k" . ($i * 7919 % 1_000_003)} = [ $i, "v" x ($i % 20), { n => $i } ];
}
delete $h{"k" . ($_ * 7919 % 1_000_003)} for grep { $_ % 3 == 0 } 0 .. 199_999;
my @keys = sort keys %h;
printf "hash: %d keys, first %s, last %s\n", scalar(@keys), $keys[0], $keys[-1];

my $sum = 0;
$sum += $h{$_}[0] + length($h{$_}[1]) + $h{$_}[2]{n} for @keys;
print "sum: $sum\n";

my $text = join " ", map { sprintf "item%05d=%x;", $_, $_ * 31 } 0 .. 99_999;
my @pairs = $text =~ /item(\d+)=([0-9a-f]+);/g;
(my $swapped = $text) =~ s/item(\d+)=(\w+);/$2:$1/g;
printf "regex: %d captures, %d bytes after substitution\n", scalar(@pairs), length $swapped;

my @sorted = sort { $a->[1] <=> $b->[1] or $a->[0] cmp $b->[0] }
  map { [ "s$_", ($_ * 2654435761) % 1000003 ] } 0 .. 99_999;
print "sorted: $sorted[0][0] $sorted[0][1] $sorted[-1][0] $sorted[-1][1]\n";

my $big = "";
$big .= chr(65 + $_ % 26) x ($_ % 100) for 0 .. 19_999;
my %freq;
$freq{$_}++ for split //, substr($big, 0, 200_000);
print "string: ", length($big), " bytes; ",
  join(",", map { "$_=$freq{$_}" } (sort keys %freq)[0 .. 4]), "\n";

my @lists = map { [ (1) x ($_ % 50) ] } 0 .. 49_999;
my $cells = 0;
$cells += @$_ for @lists;
print "lists: $cells cells\n";

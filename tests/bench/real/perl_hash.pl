# Hash-heavy Perl for scripts/bench: word counts, nested hashes of arrays, string building and
# sorting, in rounds that drop what the last round built.
# Usage: perl perl_hash.pl SCALE. Prints a digest that must not depend on the allocator.
use strict;
use warnings;

my $scale = shift // 1;
my $rounds = int(4 * $scale) > 1 ? int(4 * $scale) : 1;
my $n = int(40000 * ($scale < 1 ? $scale : 1));
$n = 2000 if $n < 2000;

my $seed = 12345;
sub next_rand {
    # A 31-bit linear congruential generator: the same numbers under every allocator and Perl.
    $seed = ($seed * 1103515245 + 12345) % 2147483648;
    return $seed;
}

my ($digest, $keys_total, $words_total) = (0, 0, 0);
for my $round (1 .. $rounds) {
    my (%count, %by_prefix, %records);
    for my $i (1 .. $n) {
        my @words = map { sprintf("%x", next_rand() % 4096) } 1 .. 6;
        my $line = join(" ", @words);
        $count{$_}++ for @words;
        push @{ $by_prefix{ substr($words[0], 0, 2) } }, $line;
        $records{"r$i"} = { line => $line, len => length($line), first => $words[0],
                            tags => [ @words[1 .. 3] ] };
    }
    my @sorted = sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count;
    for my $w (@sorted[0 .. 49]) {
        $digest = ($digest * 31 + $count{$w} + length($w)) % 1000000007;
    }
    for my $p (sort keys %by_prefix) {
        my $joined = join("|", sort @{ $by_prefix{$p} });
        $digest = ($digest * 31 + length($joined) + scalar(@{ $by_prefix{$p} })) % 1000000007;
    }
    my %inverted;
    while (my ($k, $rec) = each %records) {
        push @{ $inverted{$_} }, $k for @{ $rec->{tags} };
    }
    for my $t (sort keys %inverted) {
        $digest = ($digest * 31 + scalar(@{ $inverted{$t} })) % 1000000007;
    }
    $keys_total += scalar(keys %records) + scalar(keys %inverted);
    $words_total += scalar(keys %count);
}
print "rounds $rounds records $n keys $keys_total words $words_total\n";
print "digest $digest\n";

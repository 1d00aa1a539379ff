/* twine: HTTP dates (RFC 9110, section 5.6.7): IMF-fixdate out, the three
 * accepted forms in. Done by hand, since strftime and strptime follow the
 * locale and HTTP dates do not. */
#include "http_server_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

void tw_http_date_format(time_t t, char out[TW_HTTP_DATE_LEN + 1])
{
    /* The last date formatted: a file served again and again has one
     * Last-Modified. */
    static char last[TW_HTTP_DATE_LEN + 1];
    static time_t last_t = -1;
    if (t != last_t) {
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(last, sizeof last, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
                 tm.tm_mday, months[tm.tm_mon], (tm.tm_year + 1900) % 10000, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
        last_t = t;
    }
    memcpy(out, last, sizeof last);
}

const char *tw_http_date_now(void)
{
    static char cached[TW_HTTP_DATE_LEN + 1];
    static time_t cached_at = -1;
    time_t now = (time_t)tw_reactor_now();
    if (now != cached_at) {
        tw_http_date_format(now, cached);
        cached_at = now;
    }
    return cached;
}

/* Parsing --------------------------------------------------------------------------------- */

/* Reads exactly n digits at *s. */
static int digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*s)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *s += n;
    *out = v;
    return 0;
}

static int month(const char **s, int *out)
{
    for (int i = 0; i < 12; i++) {
        if (!strncmp(*s, months[i], 3)) {
            *s += 3;
            *out = i;
            return 0;
        }
    }
    return -1;
}

static int expect(const char **s, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*s, lit, n))
        return -1;
    *s += n;
    return 0;
}

/* "08:49:37" */
static int clock_time(const char **s, struct tm *tm)
{
    return digits(s, 2, &tm->tm_hour) || expect(s, ":") || digits(s, 2, &tm->tm_min) ||
                   expect(s, ":") || digits(s, 2, &tm->tm_sec)
               ? -1
               : 0;
}

/* Skips the day name and what follows it; returns the form: 0 IMF-fixdate
 * ("Sun, "), 1 RFC 850 ("Sunday, "), 2 asctime ("Sun "). */
static int skip_day(const char **s)
{
    const char *comma = strchr(*s, ',');
    const char *space = strchr(*s, ' ');
    if (comma && (!space || comma < space)) {
        int form = comma - *s == 3 ? 0 : 1;
        *s = comma + 1;
        return expect(s, " ") ? -1 : form;
    }
    if (space && space - *s == 3) {
        *s = space + 1;
        return 2;
    }
    return -1;
}

int tw_http_date_parse(const char *s, time_t *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int form = skip_day(&s), year = 0, bad;

    switch (form) {
    case 0:   /* 06 Nov 1994 08:49:37 GMT */
        bad = digits(&s, 2, &tm.tm_mday) || expect(&s, " ") || month(&s, &tm.tm_mon) ||
              expect(&s, " ") || digits(&s, 4, &year) || expect(&s, " ") ||
              clock_time(&s, &tm) || expect(&s, " GMT");
        break;
    case 1:   /* 06-Nov-94 08:49:37 GMT: a two-digit year more than 50 years
               * ahead is in the past (RFC 9110) */
        bad = digits(&s, 2, &tm.tm_mday) || expect(&s, "-") || month(&s, &tm.tm_mon) ||
              expect(&s, "-") || digits(&s, 2, &year) || expect(&s, " ") ||
              clock_time(&s, &tm) || expect(&s, " GMT");
        if (!bad) {
            struct tm now;
            time_t n = (time_t)tw_reactor_now();
            gmtime_r(&n, &now);
            int century = (now.tm_year + 1900) / 100 * 100;
            year += century;
            if (year > now.tm_year + 1900 + 50)
                year -= 100;
        }
        break;
    case 2:   /* Nov  6 08:49:37 1994 */
        bad = month(&s, &tm.tm_mon) || expect(&s, " ");
        if (!bad && *s == ' ')
            s++;
        bad = bad || (digits(&s, 2, &tm.tm_mday) && digits(&s, 1, &tm.tm_mday)) ||
              expect(&s, " ") || clock_time(&s, &tm) || expect(&s, " ") || digits(&s, 4, &year);
        break;
    default:
        return -EINVAL;
    }
    if (bad || *s || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60)
        return -EINVAL;
    tm.tm_year = year - 1900;
    *t = timegm(&tm);
    return 0;
}

"""Gamification (issue 7): missions, streaks, badges, instant wins and leaderboards - pure rules, no I/O, no clock.

- `periods`: calendar periods (day, week, month) and mission windows in the programme's timezone.
- `missions`: a mission's definition, its goal and reward, and the member-facing progress label.
- `streaks`: consecutive periods with a qualifying event, the one-time freeze and milestone rewards.
- `badges`: badge definitions and their computed rarity.
- `instant_wins`: prize tables (odds in parts per million) and the draw with an injected random chooser.
- `leaderboards`: privacy-preserving display names.
"""
